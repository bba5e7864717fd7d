"""The models a server serves: resolved from references, loaded, warmed up, started."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from servewell.core.ref import ModelRef
from servewell.errors import NotFound, NotReady, ServewellError
from servewell.observability import ServingMetrics
from servewell.registry import ModelVersion, RegistryAccess
from servewell.serving.backend import AsyncBackend
from servewell.serving.budget import Holding, MemoryBudget
from servewell.serving.deployment import Deployment
from servewell.serving.loading import open_model

logger = logging.getLogger(__name__)


class ModelPool:
    """Deployments by model name and version; each name has a default version: the one
    the first reference naming it resolves to (now: ``serving.promotion`` follows its
    alias). When that one fails to load, requests for the bare name are not ready (503),
    never answered by another version. Every load goes through the memory ``budget``
    (without one: measured, never refused)."""

    def __init__(
        self,
        access: RegistryAccess,
        refs: Sequence[ModelRef],
        metrics: ServingMetrics,
        is_alone: Callable[[], bool] = lambda: False,
        budget: MemoryBudget | None = None,
    ) -> None:
        self.access = access
        self.refs = tuple(refs)
        self.metrics = metrics
        self.is_alone = is_alone
        """Whether one request only is in flight (see :class:`Deployment`)."""
        self.budget = budget or MemoryBudget(access.settings, None)
        self._holdings: dict[Deployment, Holding] = {}
        """Each deployment loaded -> its share of the budget, until it has stopped."""
        self.failures: dict[str, str] = {}
        """Model reference -> why it could not be loaded."""
        self.failed_versions: dict[tuple[str, int], str] = {}
        """(name, version) -> why it could not be loaded, for the versions that resolved."""
        self._deployments: dict[tuple[str, int], Deployment] = {}
        self._defaults: dict[str, Deployment] = {}
        self.held: dict[ModelRef, Deployment] = {}
        """Each loaded reference -> the version it serves now (``serving.promotion``
        moves those naming an alias when it moves)."""
        self.default_refs: dict[str, ModelRef] = {}
        """Model name -> the reference whose version answers the bare name."""
        self._expected: set[str] = {ref.name for ref in refs}
        self._failed: dict[str, str | None] = {}
        """Model name -> why its default version failed to load, when a caller may see it."""
        self._loaded = False

    @property
    def is_ready(self) -> bool:
        """Every model loaded, warmed up, started and up (not restarting its process)."""
        return (
            self._loaded
            and not self.failures
            and all(deployment.is_up for deployment in self._deployments.values())
        )

    def restarting(self) -> list[Deployment]:
        """The deployments whose process is down, being restarted."""
        return [deployment for deployment in self._deployments.values() if not deployment.is_up]

    @property
    def is_loading(self) -> bool:
        return not self._loaded

    def deployments(self) -> list[Deployment]:
        return list(self._deployments.values())

    def names(self) -> list[str]:
        return sorted(self._expected | set(self._defaults))

    def versions_of(self, name: str) -> list[int]:
        return sorted(number for (served, number) in self._deployments if served == name)

    def find(self, name: str, version: int) -> Deployment | None:
        """The deployment of ``name`` version ``version`` when it is served, else None."""
        return self._deployments.get((name, version))

    def get(self, name: str, version: int | None = None) -> Deployment:
        """The deployment serving ``name`` (its default version unless one is given)."""
        deployment = (
            self._defaults.get(name) if version is None else self._deployments.get((name, version))
        )
        if deployment is not None:
            return deployment
        if self.is_loading or name in self._failed:
            raise NotReady(name, self._failed.get(name))
        if name not in self._defaults:
            served = ", ".join(self.names()) or "none"
            raise NotFound(
                f"model '{name}' is not served here; served models: {served}", model=name
            )
        versions = ", ".join(map(str, self.versions_of(name)))
        raise NotFound(
            f"model '{name}' version {version} is not served here; served versions: {versions}",
            model=name,
            version=version,
        )

    async def load(self, *, strict: bool = False) -> None:
        """Resolve, load, warm up and start every model; a model that fails is logged and
        recorded in :attr:`failures`, and the pool never becomes ready (``strict``: its
        error is raised instead, for a command that serves one model and stops)."""
        if strict:
            for ref in self.refs:
                await self._load_one(ref, is_default=ref.name not in self._defaults)
            self._loaded = True
            return
        try:
            refs = await asyncio.to_thread(self._references)
        except Exception as exc:
            logger.exception("cannot list the models to serve")
            self.failures["*"] = str(exc)
            self._loaded = True
            return
        self._expected |= {ref.name for ref in refs}
        named: set[str] = set()
        for ref in refs:
            is_default = ref.name not in named
            named.add(ref.name)
            try:
                await self._load_one(ref, is_default=is_default)
            except Exception as exc:
                _log_failure(ref, exc)
                self.failures[str(ref)] = _why(exc)
                self._failed[ref.name] = _why(exc) if _is_shown(exc) else None
        self._loaded = True
        if self.is_ready:
            logger.info(
                "ready: serving %s", ", ".join(f"{d.name}@{d.number}" for d in self.deployments())
            )

    def refuse(self, error: Callable[[], Exception]) -> int:
        """Fail every request waiting for a model, and every later one, with ``error()``;
        how many were waiting."""
        return sum(deployment.refuse(error) for deployment in self.deployments())

    async def close(self, timeout_s: float = 30.0) -> None:
        """Stop every model, together, each waiting at most ``timeout_s`` for what it
        computes (a model that hangs is left behind: see :meth:`Deployment.stop`)."""
        await asyncio.gather(*(self.stop_version(d, timeout_s) for d in self.deployments()))
        self._deployments.clear()
        self._defaults.clear()
        self.held.clear()

    def _references(self) -> list[ModelRef]:
        return served_references(self.access, self.refs)

    async def _load_one(self, ref: ModelRef, *, is_default: bool) -> None:
        """Load what ``ref`` names; ``is_default``: it is the first reference naming its
        model, so its version answers the bare name."""
        deployment = await self.add(ref)
        if is_default:
            self.default_refs[deployment.name] = ref
        self.hold(ref, deployment)

    def hold(self, ref: ModelRef, deployment: Deployment) -> None:
        """``ref`` serves ``deployment`` from now on (loaded and started): when ``ref``
        answers its model's bare name, requests switch to it here, at once."""
        self.held[ref] = deployment
        if self.default_refs.get(ref.name) == ref:
            self._defaults[ref.name] = deployment
            self._expected.add(ref.name)
            self._failed.pop(ref.name, None)
            self.failures.pop(str(ref), None)

    def release(self, name: str) -> None:
        """Stop answering ``name`` (an operator's unload): its bare name and references
        go; its versions stay until :meth:`remove` (what is in flight finishes)."""
        self._defaults.pop(name, None)
        self._expected.discard(name)
        self._failed.pop(name, None)
        for ref in [ref for ref in self.held if ref.name == name]:
            del self.held[ref]

    def remove(self, deployment: Deployment) -> None:
        """Serve ``deployment`` no more (nothing routes to it; the caller stops it)."""
        key = (deployment.name, deployment.number)
        if self._deployments.get(key) is deployment:
            del self._deployments[key]
            self.metrics.mark_unloaded(*key)

    async def stop_version(self, deployment: Deployment, timeout_s: float) -> None:
        """Stop ``deployment`` (see :meth:`Deployment.stop`) and give its memory back to
        the budget (a call left hanging on its thread serves nothing either)."""
        try:
            await deployment.stop(timeout_s)
        finally:
            holding = self._holdings.pop(deployment, None)
            if holding is not None:
                self.budget.release(holding)

    async def add(self, ref: ModelRef) -> Deployment:
        """The deployment ``ref`` resolves to, loaded, warmed up and started first when
        it is not served yet (a traffic policy's arm: ``serving.routing``); the model's
        default version stays as it was. A version that fails, or that the memory budget
        refuses (OverMemoryBudget), is remembered in :attr:`failed_versions`."""
        started = time.perf_counter()
        version = await asyncio.to_thread(self.access.registry.resolve, ref)
        key = (version.name, version.version)
        known = self._deployments.get(key)
        if known is not None:
            return known
        holding: Holding | None = None
        try:
            holding = self.budget.admit(version)
            deployment = await asyncio.to_thread(self._open, version, holding)
            await deployment.start()
        except Exception as exc:
            if holding is not None:
                self.budget.release(holding)
            self.failed_versions[key] = _why(exc)
            raise
        deployment.metrics.load_s.set(time.perf_counter() - started)
        self.failed_versions.pop(key, None)
        self._holdings[deployment] = holding
        self._deployments[key] = deployment  # callers load one at a time
        self.metrics.mark_loaded(*key)
        return deployment

    def _open(self, version: ModelVersion, holding: Holding) -> Deployment:
        """Load and warm ``version`` up, measuring the memory it takes (on a thread)."""
        with self.budget.measuring(holding) as reading:
            deployment = self._build(version)
            if deployment.isolated is not None:
                reading.pid = deployment.isolated.pid
        if version.memory_bytes is None and reading.measured_bytes is not None:
            self._remember(version, reading.measured_bytes)
        return deployment

    def _remember(self, version: ModelVersion, memory_bytes: int) -> None:
        """Store a first load's measurement with the version (a registry that cannot
        store it now loses only the figure: the next load measures again)."""
        try:
            self.access.registry.record_memory(version.name, version.version, memory_bytes)
        except Exception as exc:
            logger.warning(
                "cannot store the memory %s@%d took: %s", version.name, version.version, exc
            )
        else:
            logger.info(
                "%s@%d took %.1f MB at its first load",
                version.name,
                version.version,
                memory_bytes / 2**20,
            )

    def _build(self, version: ModelVersion) -> Deployment:
        server = self.access.settings.server
        model = self.access.settings.model(version.name)
        runtime = open_model(self.access, version)
        deployment = Deployment(
            version,
            runtime,
            model.batching.capped(version.signature.max_batch_size),
            self.metrics.for_deployment(version.name, version.version),
            retry_after_s=server.retry_after_s,
            is_alone=self.is_alone,
            resilience=model.resilience,
            max_queue_wait_ms=server.max_queue_wait_ms,
        )
        try:
            deployment.warm_up()
        except BaseException:
            if not isinstance(runtime, AsyncBackend):  # an async backend has not started
                runtime.close()  # a model in a child process: the child goes too
            raise
        return deployment


def _is_shown(exc: Exception) -> bool:
    """Whether a load failure's message may be shown to a caller: one of servewell's
    own errors that says what to fix (an unset credential, a memory budget), not a
    model's own exception."""
    return isinstance(exc, ServewellError) and exc.expose


def _log_failure(ref: ModelRef, exc: Exception) -> None:
    """One line for a failure servewell's message explains; the traceback too for any
    other, and for one servewell wraps around a model's own exception (its frames)."""
    cause = exc.__cause__
    if _is_shown(exc) and (cause is None or isinstance(cause, ServewellError)):
        logger.error("cannot serve %s: %s", ref, _why(exc))
    else:
        logger.exception("cannot serve %s", ref)


def _why(exc: Exception) -> str:
    """What a load failure says: a servewell error's message, else the exception's text."""
    return getattr(exc, "message", None) or str(exc)


def served_references(access: RegistryAccess, refs: Sequence[ModelRef]) -> list[ModelRef]:
    """What a pool given ``refs`` serves: those, or without any every registered model
    (its default version). Registry I/O when ``refs`` is empty."""
    if refs:
        return list(refs)
    return [ModelRef(summary.name) for summary in access.registry.list_models()]
