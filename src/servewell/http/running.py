"""What a started server serves with: built once by the app's lifespan, frozen, handed
to the routes and the fast lane."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Mapping
from dataclasses import dataclass

from servewell.bootstrap import (
    Services,
    build_jobs,
    build_llm,
    build_prediction_log,
    build_protection,
    build_services,
    build_traffic_policies,
)
from servewell.core.ref import ModelRef
from servewell.http.chat import ChatCodec, chat_limits
from servewell.http.rest import RestCodec
from servewell.http.v2 import V2Codec
from servewell.jobs.embedded import EmbeddedExecutor
from servewell.jobs.service import JobService, server_scorers
from servewell.monitoring.alerts import AlertService
from servewell.observability import ServingMetrics
from servewell.observability.alert_metrics import AlertMetrics
from servewell.observability.live import LiveRing
from servewell.observability.llm_metrics import LlmMetrics
from servewell.observability.memory_metrics import MemoryMetrics
from servewell.observability.shadow_metrics import ShadowMetrics
from servewell.serving.admission import Admission
from servewell.serving.budget import MemoryBudget, budget_bytes
from servewell.serving.call import Codec
from servewell.serving.fallback import Fallbacks
from servewell.serving.fallback_plan import Chains, plan_fallbacks
from servewell.serving.gateway import Gateway
from servewell.serving.llm_calls import LlmCalls
from servewell.serving.local import input_limits
from servewell.serving.pool import ModelPool
from servewell.serving.prediction_log import PredictionLog
from servewell.serving.predictor import Predictor
from servewell.serving.promotion import Promoter
from servewell.serving.protection import Protection
from servewell.serving.recorder import Recorder
from servewell.serving.rollout import RolloutDriver
from servewell.serving.routing import Router
from servewell.serving.shadow import ShadowTraffic
from servewell.serving.text_stream import TextStreams
from servewell.serving.traffic import TrafficPolicies
from servewell.settings import Settings

#: The collector's thresholds once serving: a young collection every 20,000 new
#: objects, not Python's 700. Its cost is the objects alive at that moment (the
#: requests in flight), whatever the threshold, so fewer collections cost less: with 64
#: chat requests in flight, 1,013 collections took 0.72 s of a 20 s run at 700 and 14
#: took 0.15 s at 20,000 (bench/README.md, issue #18); a request's garbage cycles wait
#: a little longer (a few MB at most) before they are freed.
GC_THRESHOLDS = (20_000, 20, 20)


@dataclass(frozen=True)
class RunningServer:
    settings: Settings
    """The server's settings (``services`` may have been opened with others)."""
    services: Services
    owns_services: bool
    """Whether the server opened ``services`` itself (and closes them)."""
    pool: ModelPool
    predictor: Predictor
    protection: Protection
    admission: Admission
    gateway: Gateway
    router: Router
    """The traffic policies' routes: followed from the registry once the models load."""
    promoter: Promoter
    """Follows alias moves, loads and unloads versions while running."""
    rollouts: RolloutDriver
    """Reports this process's share of the canary rollouts and, holding a rollout's
    lease, advances it."""
    codecs: Mapping[str, Codec]
    """The gateway's codec of each inference protocol (``v2``, ``rest``, ``openai``)."""
    metrics: ServingMetrics
    predictions: PredictionLog
    """The prediction log's buffer and flusher (started; closed last)."""
    alerts: AlertService | None
    """Evaluates the alert rules (on the replica holding their lease), when any are set."""
    loading: asyncio.Task[None]
    """Loads the models, in the background."""
    fast_lane: bool
    """Whether the HTTP protocol offers requests to ``gateway.try_now``: on in the
    settings, and the gateway can answer without awaiting."""
    jobs: JobService
    """Batch jobs: submitted, read and cancelled through the job routes."""
    job_executor: EmbeddedExecutor | None
    """The threads running jobs in this process (``jobs.executor: local``; started)."""
    llm: LlmCalls
    """Chat calls' route groups, token counts, spend, budgets and token rates (started;
    closed after the models, writing the spend it holds)."""
    live: LiveRing
    """The last minutes of the server's own metrics, read every few seconds (started):
    the dashboard's Live page."""

    @property
    def is_ready(self) -> bool:
        return self.pool.is_ready and self.router.started

    async def stop(self, timeout_s: float) -> None:
        """Stop loading, then the models (each waits at most ``timeout_s`` for what it
        computes), the protection, the prediction log (writing what it holds) and the
        services."""
        if not self.loading.done():
            self.loading.cancel()
            await asyncio.gather(self.loading, return_exceptions=True)
        if self.job_executor is not None:  # before the models: it stops at a batch
            await asyncio.to_thread(self.job_executor.stop, timeout_s)
        await self.live.stop()
        await self.rollouts.stop()
        await self.promoter.stop()
        if self.alerts is not None:
            await self.alerts.stop()
        await self.pool.close(timeout_s)
        await self.llm.close()
        await self.protection.stop()
        await self.predictions.close()
        if self.owns_services:
            self.services.close()


async def start_server(
    settings: Settings, services: Services | None, metrics: ServingMetrics, recorder: Recorder
) -> RunningServer:
    """Open the registry (unless ``services`` are given), check the models' fallback
    chains (InvalidConfig naming one that could never answer) and the traffic policies
    the settings declare (InvalidConfig naming what is wrong), start the protection and
    start loading the models in the background, then the versions their traffic
    policies' arms name (the server is ready once both are)."""
    owns_services = services is None
    if services is None:
        services = await asyncio.to_thread(build_services, settings)
    refs = [ModelRef.parse(text) for text in settings.server.models]
    chains, policies = await _checked_plans(settings, services, refs, owns_services)
    budget = MemoryBudget(settings, budget_bytes(settings), MemoryMetrics(metrics))
    pool = ModelPool(services, refs, metrics, recorder.is_alone, budget)
    protection = build_protection(settings, services)
    await protection.start()
    predictor = Predictor(pool, input_limits(settings.validation), protection.filter_for, metrics)
    admission = _admission(settings, protection, metrics)
    fallbacks = Fallbacks(chains, predictor, protection.cache, metrics)
    shadows = ShadowTraffic(predictor, ShadowMetrics(metrics), settings.server.shadow_queue_size)
    router = Router(policies, pool, shadows)
    promoter = Promoter(services, pool, router, fallbacks, settings.server.drain_timeout_s)
    predictions = build_prediction_log(settings, services, metrics)
    predictions.start()
    llm, streams = await _start_llm(settings, services, metrics, predictor, protection)
    gateway = Gateway(
        predictor, admission, protection.cache, recorder, fallbacks, router, predictions, streams
    )
    rollouts = RolloutDriver(services.registry, metrics, declared=policies.declared)
    rollouts.start()
    jobs, job_executor = build_jobs(
        settings, services, server_scorers(services, asyncio.get_running_loop(), predictor)
    )
    return RunningServer(
        settings=settings,
        services=services,
        owns_services=owns_services,
        pool=pool,
        predictor=predictor,
        protection=protection,
        admission=admission,
        gateway=gateway,
        router=router,
        promoter=promoter,
        rollouts=rollouts,
        codecs=_codecs(settings, llm),
        llm=llm,
        metrics=metrics,
        predictions=predictions,
        alerts=_start_alerts(settings, services, metrics),
        loading=asyncio.create_task(
            _load(pool, promoter, job_executor), name="servewell-load-models"
        ),
        fast_lane=settings.server.fast_lane and gateway.answers_now,
        jobs=jobs,
        job_executor=job_executor,
        live=_start_live(metrics),
    )


def _admission(settings: Settings, protection: Protection, metrics: ServingMetrics) -> Admission:
    open_paths = frozenset(settings.auth.open_paths)
    return Admission(protection.guard, metrics, open_paths, protection.lockout)


def _codecs(settings: Settings, llm: LlmCalls) -> dict[str, Codec]:
    depth = settings.validation.max_json_depth
    chat = ChatCodec(chat_limits(settings), depth, llm.counter)
    chat.on_usage = llm.used
    return {"v2": V2Codec(depth), "rest": RestCodec(depth), "openai": chat}


async def _start_llm(
    settings: Settings,
    services: Services,
    metrics: ServingMetrics,
    predictor: Predictor,
    protection: Protection,
) -> tuple[LlmCalls, TextStreams]:
    """The chat path's LLM steps (route groups checked: InvalidConfig), started, and
    what opens streamed answers."""
    llm_metrics = LlmMetrics(metrics)
    llm = await asyncio.to_thread(
        build_llm, settings, services, metrics, llm_metrics, predictor, protection
    )
    await llm.start()
    return llm, TextStreams(predictor, llm_metrics, settings.chat.stream_holdback_chars)


async def _checked_plans(
    settings: Settings, services: Services, refs: list[ModelRef], owns_services: bool
) -> tuple[Chains, TrafficPolicies]:
    """The fallback chains and the traffic policies, checked against the registry (the
    services closed if they are the server's own and a check fails)."""
    try:
        chains = await asyncio.to_thread(plan_fallbacks, services, refs)
        policies = await asyncio.to_thread(build_traffic_policies, settings, services)
    except Exception:
        if owns_services:
            services.close()
        raise
    return chains, policies


def _start_live(metrics: ServingMetrics) -> LiveRing:
    live = LiveRing(metrics)
    live.start()
    return live


def _start_alerts(
    settings: Settings, services: Services, metrics: ServingMetrics
) -> AlertService | None:
    """The alert rules' evaluation (started), when there are any."""
    if not settings.monitoring.alerts:
        return None
    alerts = AlertService(services, settings.monitoring, AlertMetrics(metrics))
    alerts.start()
    return alerts


async def _load(pool: ModelPool, promoter: Promoter, executor: EmbeddedExecutor | None) -> None:
    await pool.load()
    await promoter.start()
    if executor is not None:  # jobs left unfinished resume once their models are here
        executor.start()  # loads the versions the policies' arms name, then follows
    # Everything loaded so far (libraries, models) lives as long as the process: move
    # it out of the garbage collector's sight, so full collections stay short and do
    # not show up as latency spikes under load.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
