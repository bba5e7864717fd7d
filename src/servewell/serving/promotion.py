"""Versions coming and going while a server runs: a promote, a rollback, an operator's
load and unload.

At each change of the registry's routing revision (a traffic policy, or any alias
move: ``serving/traffic.py`` polls it), :meth:`Promoter.apply`, one at a time:

1. re-resolves every loaded reference that names an alias (``fraud@canary``; a bare
   ``fraud`` follows its ``production`` alias, and without one keeps the version it
   had); a version that moved is loaded, warmed up and started first, in this task,
   while requests keep going to the old one; then the reference switches to it (for
   the model's default reference, one dict assignment: ``ModelPool.hold``);
2. compiles the traffic routes (``Router.apply``);
3. retires each version nothing routes to any more: not a reference's, not a route's
   arm or shadow, not a target of a fallback chain (``serving.fallback``: chains name versions,
   which stay loaded). A retired version first waits, in its own task, until the
   requests already resolved to it are answered (``Deployment.in_flight``; at most its
   ``timeout_ms`` plus a grace period), then leaves the pool (a path naming it now
   answers 404 with the versions served) and stops: its runtime is closed.

A version that fails to load is logged; the reference keeps the version it had.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from servewell.core.ref import DEFAULT_ALIAS, ModelRef
from servewell.errors import AliasNotFound, ServewellError
from servewell.registry import ModelVersion, RegistryAccess
from servewell.serving.deployment import Deployment
from servewell.serving.fallback import Fallbacks
from servewell.serving.fallback_plan import ModelTarget, plan_fallbacks
from servewell.serving.pool import ModelPool
from servewell.serving.routing import Router

logger = logging.getLogger(__name__)

#: How long past its ``timeout_ms`` a retired version waits for its requests.
GRACE_S = 5.0
#: How often a retired version looks whether its requests are answered.
DRAIN_POLL_S = 0.05


class Promoter:
    def __init__(
        self,
        access: RegistryAccess,
        pool: ModelPool,
        router: Router,
        fallbacks: Fallbacks,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.access = access
        self.pool = pool
        self.router = router
        self.fallbacks = fallbacks
        self.stop_timeout_s = stop_timeout_s
        self._lock = asyncio.Lock()
        """One change at a time: a poll, a load, an unload, a retirement's last check."""
        self._retiring: dict[Deployment, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Follow the registry's routing revision (first read included)."""
        await self.router.start(on_change=self.apply)

    async def stop(self) -> None:
        """Stop following; a retirement still waiting for requests is cut short (the
        pool stops every version still in it), one already stopping its version is
        waited for (bounded by ``stop_timeout_s``)."""
        await self.router.stop()
        loaded = set(self.pool.deployments())
        for deployment, task in list(self._retiring.items()):
            if deployment in loaded:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def retiring(self) -> list[Deployment]:
        """The versions waiting for their last requests before they stop."""
        return list(self._retiring)

    async def apply(self) -> None:
        async with self._lock:
            await self._follow_aliases()
            await self.router.apply()
            self._retire_unused()

    async def load(self, name: str) -> Deployment:
        """Serve ``name`` by its default reference (``--models``' first naming it, else
        its production alias or latest version), loading it first if needed."""
        async with self._lock:
            ref = self.pool.default_refs.get(name) or next(
                (ref for ref in self.pool.refs if ref.name == name), ModelRef(name)
            )
            deployment = await self.pool.add(ref)
            self.pool.default_refs[name] = ref
            self.pool.hold(ref, deployment)
            await self.router.apply()
            return deployment

    async def unload(self, name: str) -> None:
        """Answer ``name`` no more: its bare name and every version (a path naming one
        answers 404 once its last requests are answered); NotFound if it is not served."""
        async with self._lock:
            self.pool.get(name)  # NotFound (404) for a model not served here
            self.pool.release(name)
            await self.router.apply()
            self._retire_unused()

    async def _follow_aliases(self) -> None:
        following = {ref: d.number for ref, d in self.pool.held.items() if ref.version is None}
        if not following:
            return
        moved = await asyncio.to_thread(self._resolve_all, following)
        for ref, version in moved.items():
            try:
                deployment = await self.pool.add(ModelRef(ref.name, version=version.version))
            except Exception as exc:
                logger.warning(
                    "%s moved to version %d, which cannot be served (%s): it keeps %s",
                    ref,
                    version.version,
                    getattr(exc, "message", None) or exc,
                    self._serving(ref),
                )
                continue
            await self._plan_chain(deployment)
            old = self._serving(ref)
            self.pool.hold(ref, deployment)
            logger.info("%s: %s -> %s@%d", ref, old, deployment.name, deployment.number)

    def _resolve_all(self, refs: dict[ModelRef, int]) -> dict[ModelRef, ModelVersion]:
        """The references (-> the version each serves) whose alias points elsewhere
        now, and where (registry I/O, on a thread)."""
        moved: dict[ModelRef, ModelVersion] = {}
        for ref, number in refs.items():
            try:
                version = self.access.registry.resolve(
                    ModelRef(ref.name, alias=ref.alias or DEFAULT_ALIAS)
                )
            except AliasNotFound:
                if ref.alias is not None:
                    logger.warning("%s: the alias is gone; it keeps version %d", ref, number)
                continue  # a bare name without a production alias keeps its version
            except ServewellError as exc:
                logger.warning("cannot resolve %s: %s", ref, exc.message)
                continue
            if version.version != number:
                moved[ref] = version
        return moved

    async def _plan_chain(self, deployment: Deployment) -> None:
        """Give a version loaded while running its model's fallback chain (as
        ``plan_fallbacks`` checks it at start-up); a chain that could not answer is
        logged, and the version serves without one."""
        key = (deployment.name, deployment.number)
        if key in self.fallbacks.chains or not self._has_fallbacks(deployment.name):
            return
        served = [ModelRef(d.name, version=d.number) for d in self.pool.deployments()]
        try:
            chains = await asyncio.to_thread(plan_fallbacks, self.access, served)
        except ServewellError as exc:
            logger.warning("%s@%d serves without fallbacks: %s", *key, exc.message)
            return
        if key in chains:
            self.fallbacks.chains = {**self.fallbacks.chains, key: chains[key]}

    def _has_fallbacks(self, name: str) -> bool:
        return bool(self.access.settings.model(name).resilience.fallbacks)

    def _serving(self, ref: ModelRef) -> str:
        held = self.pool.held.get(ref)
        return "nothing" if held is None else f"{held.name}@{held.number}"

    def _in_use(self) -> set[tuple[str, int]]:
        """Every version something may send a request to."""
        used = {(d.name, d.number) for d in self.pool.held.values()}
        used |= {(d.name, d.number) for d in self.router.in_use()}
        loaded = {(d.name, d.number) for d in self.pool.deployments()}
        for primary, chain in self.fallbacks.chains.items():
            if primary in loaded:
                used |= {(t.name, t.version) for t in chain if isinstance(t, ModelTarget)}
        return used

    def _retire_unused(self) -> None:
        used = self._in_use()
        for deployment in self.pool.deployments():
            key = (deployment.name, deployment.number)
            if key not in used and deployment not in self._retiring:
                self._retiring[deployment] = asyncio.create_task(
                    self._retire(deployment), name=f"servewell-retire-{key[0]}@{key[1]}"
                )

    async def _retire(self, deployment: Deployment) -> None:
        """Wait for the requests resolved to ``deployment``, then unload it, unless
        something routes to it again meanwhile (a rollback right after a promote)."""
        try:
            await self._drained(deployment)
            async with self._lock:
                if (deployment.name, deployment.number) in self._in_use():
                    return
                self.pool.remove(deployment)  # from now on a path naming it is a 404
                self._retire_unused()  # its fallback targets may be unused now
            await self.pool.stop_version(deployment, self.stop_timeout_s)
            logger.info("unloaded %s@%d", deployment.name, deployment.number)
        except Exception:  # it serves nothing any more either way
            logger.exception("stopping %s@%d failed", deployment.name, deployment.number)
        finally:
            self._retiring.pop(deployment, None)

    @staticmethod
    async def _drained(deployment: Deployment) -> None:
        """Until no request resolved to ``deployment`` is waiting (bounded: a request
        is answered within its deadline, and a slow client's body is read before)."""
        until = time.monotonic() + deployment.timeout_ms / 1000 + GRACE_S
        while deployment.in_flight > 0 and time.monotonic() < until:
            await asyncio.sleep(DRAIN_POLL_S)
