"""Traffic policies as every worker sees them, re-read in the background.

Like the key ring (``serving/keyring.py``): each worker keeps every model's policy in
memory, so the request path's look-up is one dict get; a background task polls the
registry's routing revision every ``refresh_interval_s`` (0.5 s by default) and
re-reads the policies only when it changed, so a ``servewell traffic split`` (or an
alias move, whose revision is part of it) reaches every worker and replica within a
second. After each change it awaits :attr:`TrafficPolicies.on_change`: the router
(``serving/routing.py``) compiles the policies into the routes the resolve step reads.

Policies declared in the settings (``traffic.<model>``, :func:`declared_policies`) are
read once, when the server starts, and checked against the registry then
(:func:`check_declared`); each re-read merges them with the registry's
(``core/traffic.active_policies``: the registry's wins unless the file says
``source: file``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from servewell.core.traffic import TrafficPolicy, active_policies, declared_policy
from servewell.errors import InvalidConfig, InvalidTrafficPolicy, NotFound, TrafficDeclaredInFile
from servewell.registry.traffic import RoutingRevision, TrafficStore
from servewell.serving.polling import Poller, keep_last_good
from servewell.settings import Settings, config_path

logger = logging.getLogger(__name__)


class TrafficPolicies:
    def __init__(
        self,
        store: TrafficStore,
        refresh_interval_s: float = 0.5,
        declared: Mapping[str, TrafficPolicy] | None = None,
    ) -> None:
        self.store = store
        self.refresh_interval_s = refresh_interval_s
        self.declared = dict(declared or {})
        """The settings' policies (:func:`declared_policies`), by model."""
        self.revision: RoutingRevision | None = None
        """The routing revision the table reflects; None before the first read."""
        self._policies = active_policies((), self.declared)
        self._poller = Poller("servewell-traffic", self._poll_once, refresh_interval_s)
        self.on_change: Callable[[], Awaitable[None]] | None = None
        """Awaited after every read that changed the table (and after the first), in the
        refreshing task: one at a time, never beside another refresh."""

    async def start(self) -> None:
        """Read the policies (and apply them: :attr:`on_change`), then poll."""
        await self._poll_once()
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()

    def policy(self, model: str) -> TrafficPolicy | None:
        """``model``'s policy as last read, or None (requests resolve as without one)."""
        return self._policies.get(model)

    async def refresh(self) -> bool:
        """Re-read the policies if the registry's routing revision moved; whether it did."""
        revision = await asyncio.to_thread(self.store.revision)
        if revision == self.revision:
            return False
        # Revision first, then the policies: a change in between is read now and again
        # at the next poll, never missed.
        policies = await asyncio.to_thread(self.store.list)
        self._policies = active_policies(policies, self.declared)
        self.revision = revision
        return True

    async def _poll_once(self) -> None:
        changed = await keep_last_good("traffic policies", self.refresh)
        if changed and self.on_change is not None:
            try:
                await self.on_change()
            except Exception:  # the routes stay as they were; the next change retries
                logger.exception("could not apply the traffic policies")


def declared_policies(settings: Settings) -> dict[str, TrafficPolicy]:
    """The settings' ``traffic`` policies, by model, each checked as ``servewell traffic``
    checks one (InvalidConfig naming the key); dated by the settings file's last change
    (the policy's lifetime for ``traffic show``)."""
    if not settings.traffic:
        return {}
    path = config_path()
    try:
        where, at = str(path), datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:  # not from a file: keyword arguments or the environment
        where, at = "the settings", datetime.now(UTC)
    return {
        model: declared_policy(model, declared, where, at)
        for model, declared in settings.traffic.items()
    }


def refuse_if_declared(declared: Mapping[str, TrafficPolicy], name: str) -> TrafficPolicy | None:
    """``name``'s declared policy; TrafficDeclaredInFile (exit 2) when it is declared with
    ``source: file``: the file has the last word on its traffic, so neither a change in
    the registry (``servewell traffic``) nor a rollout's steps would ever be served."""
    policy = declared.get(name)
    if policy is not None and policy.file_wins:
        raise TrafficDeclaredInFile(name, policy.declared_in or "the settings")
    return policy


def check_declared(store: TrafficStore, declared: Mapping[str, TrafficPolicy]) -> None:
    """Refuse, as ``servewell traffic`` would, a declared policy whose model is not
    registered or whose targets it does not have (InvalidConfig naming the key)."""
    for model, policy in declared.items():
        parts: list[tuple[str, list[str]]] = [
            (f"traffic.{model}", []),
            (f"traffic.{model}.split", policy.targets),
        ]
        if policy.shadow is not None:
            parts.append((f"traffic.{model}.shadow", [policy.shadow.target]))
        for key, targets in parts:
            try:
                store.check_targets(model, targets)
            except (NotFound, InvalidTrafficPolicy) as exc:
                raise InvalidConfig(
                    f"invalid settings ({policy.declared_in}): {key}: {exc.message}"
                ) from None
