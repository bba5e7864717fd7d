"""The one place where concrete adapters are chosen and wired together."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from servewell.cache import (
    MemoryResponseCache,
    RedisResponseCache,
    ResponseCache,
    SyncResponseCache,
)
from servewell.core.llm_cost import FREE, Prices
from servewell.errors import InvalidInput
from servewell.jobs.embedded import EmbeddedExecutor
from servewell.jobs.folder import JobFolders
from servewell.jobs.runner import JobRunner, OpenScorer
from servewell.jobs.service import JobService
from servewell.limits import (
    MemoryRateLimiter,
    Rate,
    RateLimiter,
    RedisRateLimiter,
    SyncRateLimiter,
)
from servewell.observability import ServingMetrics
from servewell.observability.llm_metrics import LlmMetrics
from servewell.registry import LocalArtifactStore, SqlRegistry
from servewell.registry.ended_sessions import EndedSessionStore
from servewell.registry.jobs import JobStore
from servewell.registry.keys import ApiKeyStore
from servewell.registry.leases import Leases, holder_id
from servewell.registry.prediction_store import open_prediction_store
from servewell.registry.sketches import SketchStore
from servewell.registry.spend import SpendStore
from servewell.registry.traffic import TrafficStore
from servewell.serving.ended_sessions import EndedSessions
from servewell.serving.guard import Guard
from servewell.serving.keyring import KeyRing
from servewell.serving.llm_accounting import LlmAccounting, spec_prices
from servewell.serving.llm_calls import LlmCalls
from servewell.serving.llm_routes import RouteGroups
from servewell.serving.lockout import Lockout
from servewell.serving.pool import served_references
from servewell.serving.prediction_log import PredictionLog
from servewell.serving.prediction_reading import Readings
from servewell.serving.prediction_rows import DEFAULT_HASH_KEY, RowBuilder
from servewell.serving.prediction_sketches import PredictionSketcher
from servewell.serving.predictor import Predictor
from servewell.serving.protection import Protection
from servewell.serving.response_cache import ResponseCacheLayer
from servewell.serving.spend import SpendLedger
from servewell.serving.token_count import TokenCounter
from servewell.serving.traffic import TrafficPolicies, check_declared, declared_policies
from servewell.settings import Settings


@dataclass(frozen=True)
class Services:
    """Everything long-lived a command, server or worker needs, built from the settings."""

    settings: Settings
    registry: SqlRegistry
    artifacts: LocalArtifactStore

    def close(self) -> None:
        self.registry.close()


def build_services(settings: Settings) -> Services:
    """Open the registry (migrating it if needed) and the artifact store."""
    registry = SqlRegistry(settings.resolved_database_url)
    registry.open()
    artifacts = LocalArtifactStore(settings.resolved_artifacts_dir)
    return Services(settings=settings, registry=registry, artifacts=artifacts)


def build_protection(settings: Settings, services: Services) -> Protection:
    """Keys, rate limits and the lockout (in-process or Redis), response cache
    (in-process or Redis) and output filters, as the settings say. Not started: the
    server's lifespan starts it."""
    keyring = (
        KeyRing(ApiKeyStore(services.registry), settings.auth.refresh_interval_s)
        if settings.auth.enabled
        else None
    )
    limiter = _rate_limiter(settings) if settings.rate_limits.enabled else None
    cache = None
    if settings.cache.enabled:
        backend = _response_cache(settings)
        sync: SyncResponseCache | None = (
            backend if isinstance(backend, MemoryResponseCache) else None
        )
        cache = ResponseCacheLayer(backend, settings, sync)
    # Decided here, once: the serving layer never asks which backend it was given.
    sync_limiter: SyncRateLimiter | None = (
        limiter if isinstance(limiter, MemoryRateLimiter) else None
    )
    return Protection(
        guard=Guard(keyring, limiter, settings.rate_limits, sync_limiter),
        keyring=keyring,
        limiter=limiter,
        lockout=_lockout(settings, limiter) if keyring is not None else None,
        cache=cache,
        settings=settings,
        ended_sessions=(
            EndedSessions(EndedSessionStore(services.registry), settings.auth.refresh_interval_s)
            if keyring is not None
            else None
        ),
    )


def build_traffic_policies(settings: Settings, services: Services) -> TrafficPolicies:
    """Every model's traffic policy as the registry holds it, re-read when it changes,
    merged with those the settings declare, which are checked against the registry here
    (InvalidConfig naming the key). Not started: the server's lifespan starts it
    (through ``serving.routing.Router``)."""
    store = TrafficStore(services.registry)
    declared = declared_policies(settings)
    check_declared(store, declared)
    return TrafficPolicies(store, declared=declared)


def build_prediction_log(
    settings: Settings, services: Services, metrics: ServingMetrics
) -> PredictionLog:
    """The prediction log, writing to the store ``monitoring.store`` names. Not started:
    the server's start-up starts it."""
    monitoring = settings.monitoring
    key = monitoring.hash_key.encode() if monitoring.hash_key else DEFAULT_HASH_KEY
    log_inputs = lambda name: settings.model(name).monitoring.log_inputs  # noqa: E731
    rows = RowBuilder(log_inputs, key[:64])  # a BLAKE2b key is at most 64 bytes
    sketches = PredictionSketcher(
        SketchStore(services.registry),
        Readings(services, log_inputs).fresh,  # the sketcher keeps them (REREAD_S)
        monitoring.sketch_bucket_s,
        monitoring.retention_days * 86400,
    )
    return PredictionLog(
        open_prediction_store(services, monitoring),
        monitoring,
        lambda name: settings.model(name).monitoring.sample_rate,
        rows,
        metrics,
        consumers=[sketches.write],
    )


def build_llm(
    settings: Settings,
    services: Services,
    metrics: ServingMetrics,
    llm_metrics: LlmMetrics,
    predictor: Predictor,
    protection: Protection,
) -> LlmCalls:
    """The chat path's LLM steps: the route groups the settings declare, checked against
    the registry (InvalidConfig naming the group), and the accounting (spend, budgets,
    token rates on the guard's limiter). A model's prices: its remote spec's, else
    ``llm_costs.prices``, else free. Registry I/O; not started."""
    configured = {
        name: Prices(prices.input_per_1k, prices.output_per_1k)
        for name, prices in settings.llm_costs.prices.items()
    }
    from_spec = spec_prices(predictor.pool)

    def prices_for(model: str) -> Prices:
        return from_spec(model) or configured.get(model, FREE)

    routes = RouteGroups(settings.route_groups, predictor, llm_metrics)
    if settings.route_groups:
        refs = {ref.name: ref for ref in served_references(services, predictor.pool.refs)}
        routes.check(sorted(refs), lambda name: services.registry.resolve(refs[name]).signature)
    ledger = SpendLedger(SpendStore(services.registry), settings.llm_costs.flush_interval_s)
    limiter = protection.limiter
    accounting = LlmAccounting(ledger, metrics, llm_metrics, prices_for, limiter)
    keyring = protection.keyring
    keys = keyring.named if keyring is not None else (lambda name: None)
    return LlmCalls(routes, accounting, TokenCounter(), keys)


def build_jobs(
    settings: Settings, services: Services, open_scorer: OpenScorer
) -> tuple[JobService, EmbeddedExecutor | None]:
    """Batch jobs over the registry database and the artifact store's ``jobs/``, and the
    embedded executor that runs them in this process (``jobs.executor: local``; not
    started: the server's lifespan starts it), or, with ``celery``, none: each
    submission sends a task to the ``servewell worker`` processes."""
    store = JobStore(services.registry)
    folders = JobFolders(services.artifacts.root / "jobs")
    jobs = settings.jobs
    service = JobService(store, folders, jobs.chunk_rows, services.artifacts.root)
    if jobs.executor == "celery":
        from servewell.jobs.workers import celery_app, send_job

        sender = celery_app(settings)
        service.submitted = lambda job_id: send_job(sender, job_id)
        return service, None
    stopping = threading.Event()
    leases = Leases(services.registry)
    runner = JobRunner(
        store, folders, leases, holder_id(), open_scorer, jobs.max_attempts, stopping.is_set
    )
    executor = EmbeddedExecutor(runner, jobs.max_threads, jobs.retention_days, stopping)
    service.submitted = lambda job_id: executor.wake()
    return service, executor


def _rate_limiter(settings: Settings) -> RateLimiter:
    limits = settings.rate_limits
    if not _uses_redis(settings, limits.backend):
        return MemoryRateLimiter()
    return _redis_rate_limiter(settings)


def _redis_rate_limiter(settings: Settings) -> RedisRateLimiter:
    limits = settings.rate_limits
    return RedisRateLimiter(
        _redis_url(settings, "rate_limits.backend"),
        failure_policy=limits.failure_policy,
        timeout_s=limits.redis_timeout_s,
    )


def _lockout(settings: Settings, limiter: RateLimiter | None) -> Lockout | None:
    """Failed authentications counted where the rate limits are kept (whether or not
    rate limits are on): in Redis, on the rate limiter's connection when there is one;
    else in a table of this process's own, apart from the keys' buckets (a caller
    cycling through addresses must not push the keys' buckets out of theirs)."""
    text = settings.auth.failed_attempts_rate
    if text is None:
        return None
    rate = Rate.parse(text)
    if isinstance(limiter, RedisRateLimiter):
        return Lockout(limiter, rate)
    if _uses_redis(settings, settings.rate_limits.backend):
        return Lockout(_redis_rate_limiter(settings), rate)
    memory = MemoryRateLimiter()
    return Lockout(memory, rate, sync_limiter=memory)


def _response_cache(settings: Settings) -> ResponseCache:
    if not _uses_redis(settings, settings.cache.backend):
        return MemoryResponseCache(settings.cache.max_bytes)
    return RedisResponseCache(_redis_url(settings, "cache.backend"))


def _uses_redis(settings: Settings, backend: str) -> bool:
    """``auto`` is Redis when there is one to share (``redis_url``), else in-process:
    replicas given a Redis share budgets and answers without being told twice."""
    if backend == "auto":
        return settings.redis_url is not None
    return backend == "redis"


def _redis_url(settings: Settings, needed_by: str) -> str:
    if settings.redis_url is None:
        raise InvalidInput(f"{needed_by} is 'redis' but SERVEWELL_REDIS_URL is not set")
    return settings.redis_url
