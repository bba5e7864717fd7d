"""Serving by the traffic policies: which deployment answers a request whose path names
no version.

The :class:`Router` compiles each served model's policy (``serving/traffic.py`` keeps
them current) into a :class:`Route`: its arms, each with the deployment it serves now.
An arm's target is a version, or an alias resolved when the policy (or any alias) last
changed; a version the pool does not serve yet is loaded, warmed up and started first,
in the refreshing task, and only then is the new route used: until then requests keep
the route they had. An arm that cannot be served (its alias was removed, its version
fails to load) sends its share to the model's default version, with a warning in the
log; its requests still carry its name. Per request the resolve step costs a dict get,
a header get and ``core/assignment.assign`` (one BLAKE2b of a short string).

A policy's shadow is compiled the same way: its version is loaded, warmed up and
started first, then :class:`~servewell.serving.shadow.ShadowTraffic` copies requests to
it; a shadow that cannot be served is left out, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from servewell.core.assignment import assign
from servewell.core.traffic import Arm, Shadow, Target, TrafficPolicy
from servewell.errors import ServewellError
from servewell.serving.deployment import Deployment
from servewell.serving.pool import ModelPool
from servewell.serving.shadow import ShadowTraffic
from servewell.serving.traffic import TrafficPolicies

logger = logging.getLogger(__name__)

VERSION_HEADER = b"x-servewell-version"
ARM_HEADER = b"x-servewell-arm"


@dataclass(frozen=True, slots=True)
class RoutedArm:
    """One arm of a compiled route, and what it puts on its answers."""

    name: str
    """The arm's target as the policy spells it ("2", "canary"): its metrics label."""
    deployment: Deployment
    headers: tuple[tuple[bytes, bytes], tuple[bytes, bytes]]
    """``X-Servewell-Version`` and ``X-Servewell-Arm``, encoded once."""

    @classmethod
    def of(cls, arm: Arm, deployment: Deployment) -> RoutedArm:
        version = str(deployment.number).encode()
        return cls(
            arm.target, deployment, ((VERSION_HEADER, version), (ARM_HEADER, arm.target.encode()))
        )


@dataclass(frozen=True, slots=True)
class Route:
    """A model's split as the request path applies it."""

    experiment_id: str
    header: bytes
    """The sticky header's lower-case name (how ``Call.headers`` holds it)."""
    arms: tuple[Arm, ...]
    by_target: Mapping[str, RoutedArm]

    def pick(self, headers: Mapping[bytes, bytes]) -> RoutedArm:
        """The arm for a request: sticky on the user id in its header, else random."""
        value = headers.get(self.header)
        user_id = value.decode("latin-1") if value else None
        return self.by_target[assign(self.experiment_id, user_id, self.arms).target]


class Router:
    def __init__(
        self, policies: TrafficPolicies, pool: ModelPool, shadows: ShadowTraffic | None = None
    ) -> None:
        self.policies = policies
        self.pool = pool
        self.shadows = shadows
        """The policies' shadows (None: shadows are not served)."""
        self.routes: dict[str, Route] = {}
        """Served model name -> its route; replaced whole at each change (read per request)."""
        self.started = False
        """Whether the policies were read and applied once (or could not be)."""

    async def start(self, on_change: Callable[[], Awaitable[None]] | None = None) -> None:
        """Read and apply the policies (loading the versions their arms name), then
        follow the registry; ``on_change`` (default :meth:`apply`) runs at each change."""
        self.policies.on_change = on_change or self.apply
        try:
            await self.policies.start()
        finally:
            self.started = True

    async def stop(self) -> None:
        await self.policies.stop()
        if self.shadows is not None:
            await self.shadows.stop()

    def route(self, model: str) -> Route | None:
        return self.routes.get(model)

    def in_use(self) -> set[Deployment]:
        """The deployments the routes and shadows send requests to (they must stay
        loaded)."""
        routes = self.routes.values()
        used = {arm.deployment for route in routes for arm in route.by_target.values()}
        if self.shadows is not None:
            used |= {lane.deployment for lane in self.shadows.lanes.values()}
        return used

    async def apply(self) -> None:
        """Compile every served model's policy into its route and its shadow (the tables
        are replaced at the end, so a request never sees half of a change)."""
        routes: dict[str, Route] = {}
        shadows: dict[str, tuple[Deployment, float]] = {}
        for model in self.pool.names():
            policy = self.policies.policy(model)
            if policy is None:
                continue
            try:
                default = self.pool.get(model)
            except ServewellError:  # the model failed to load: it answers as before
                continue
            if policy.arms:
                routes[model] = await self._compile(policy, default)
            if policy.shadow is not None and self.shadows is not None:
                shadow = await self._shadow(model, policy.shadow)
                if shadow is not None:
                    shadows[model] = (shadow, policy.shadow.percent)
        self.routes = routes
        if self.shadows is not None:
            await self.shadows.apply(shadows)
        logger.info(
            "traffic routes: %s; shadows: %s",
            "; ".join(_describe(model, route) for model, route in routes.items()) or "none",
            ", ".join(f"{m}->v{d.number} {p:g} %" for m, (d, p) in shadows.items()) or "none",
        )

    async def _compile(self, policy: TrafficPolicy, default: Deployment) -> Route:
        by_target = {
            arm.target: RoutedArm.of(arm, await self._deployment(policy.model, arm, default))
            for arm in policy.arms
        }
        return Route(
            policy.experiment_id, policy.sticky_header.lower().encode(), policy.arms, by_target
        )

    async def _deployment(self, model: str, arm: Arm, default: Deployment) -> Deployment:
        """What ``arm`` serves: its version, loaded if needed; the default if it cannot."""
        instead = f"its share goes to {default.name}@{default.number}"
        return await self._loaded(model, arm, "arm", instead) or default

    async def _shadow(self, model: str, shadow: Shadow) -> Deployment | None:
        """The deployment ``shadow`` names, loaded if needed; None if it cannot be."""
        return await self._loaded(model, shadow, "shadow", "nothing is copied to it")

    async def _loaded(
        self, model: str, target: Target, kind: str, instead: str
    ) -> Deployment | None:
        """The deployment ``target`` names, loaded if needed; None, with a warning saying
        what happens ``instead``, when it cannot be served."""
        try:
            return await self.pool.add(target.ref(model))
        except Exception as exc:
            logger.warning(
                "traffic %s %s of %s cannot be served (%s): %s",
                kind,
                target.target,
                model,
                getattr(exc, "message", None) or exc,
                instead,
            )
            return None


def _describe(model: str, route: Route) -> str:
    arms = ", ".join(
        f"{arm.target}={arm.weight}->v{route.by_target[arm.target].deployment.number}"
        for arm in route.arms
    )
    return f"{model} [{arms}]"
