"""A model's fallback chain in the request path: when the model does not answer, its
``fallbacks`` are tried in order, and the first that answers does.

The gateway calls :meth:`Fallbacks.recover` with what the model raised (nothing runs
here while models answer: the hot path pays one ``try``). A model "does not answer"
when it fails (``ModelFailed``, or any exception that is not one of servewell's own: it
becomes a ``ModelFailed`` naming the model, so the caller's 500 names it too), crashes
(``ModelCrashed``), misses its deadline (``DeadlineExceeded``), is shed
(``Overloaded``) or is not taking requests (``ModelUnavailable``: its breaker is open,
or its process restarts). Anything else — the caller's own mistakes above all (4xx) —
is never covered up.

Targets (``serving.fallback_plan`` resolved and checked them at start-up):

- another served version gets the same decoded request, validated against its own
  signature, asked for the primary's outputs, with its own deadline: its ``timeout_ms``,
  but never past the caller's own deadline (its ``Request-Timeout`` header);
- ``cache``: the last answer the response cache kept for the very same request bytes,
  expired or not (``cache.stale_ttl_s``); none, or ``Cache-Control: no-cache``, goes on;
- ``default``: the configured value of each output, for every row of the request.

An answer says who gave it: ``X-Servewell-Served-By: fraud@2; fallback=timeout`` (or
``cache; ...``, ``default; ...``; a stale answer also ``X-Cache: stale``), its body
names the version that answered (a stale answer, the version that answered then; a
default, the primary), and
``servewell_fallback_total{model,reason,target}`` counts it (``target="none"`` when
every target failed: the caller then gets the model's own error). The gateway never
stores a fallback answer in the response cache (:func:`is_fallback`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from servewell.core.deadline import Deadline, deadline_for
from servewell.core.inference import InferRequest, InferResponse
from servewell.core.validation import validate_inputs
from servewell.errors import (
    DeadlineExceeded,
    InvalidInput,
    ModelCrashed,
    ModelFailed,
    ModelUnavailable,
    Overloaded,
    ServewellError,
)
from servewell.observability import ServingMetrics
from servewell.serving.deployment import Deployment
from servewell.serving.fallback_plan import CacheTarget, Chains, DefaultTarget, ModelTarget, Target
from servewell.serving.predictor import Predictor
from servewell.serving.reply import Reply, unpack_reply
from servewell.serving.response_cache import ResponseCacheLayer

logger = logging.getLogger(__name__)

SERVED_BY = b"x-servewell-served-by"
STALE = (b"x-cache", b"stale")
"""The header of an answer the ``cache`` target gave: a stale one, not a miss."""
CACHE_CONTROL = b"cache-control"

#: Why a model did not answer, as the header and the metric say it.
REASONS: tuple[tuple[type[ServewellError], str], ...] = (
    (DeadlineExceeded, "timeout"),
    (Overloaded, "overloaded"),
    (ModelUnavailable, "unavailable"),
    (ModelCrashed, "crashed"),
    (ModelFailed, "error"),
)


@dataclass(slots=True)
class Failed:
    """A request its model did not answer, and what a target needs to answer it."""

    deployment: Deployment
    request: InferRequest
    encode: Callable[[InferResponse], Reply]
    """The protocol's answer to a response, encoded as the primary's would be."""
    headers: Mapping[bytes, bytes]
    cache_key: str | None
    requested: Deadline | None
    """The caller's own deadline (its ``Request-Timeout``), if it sent one."""


def reason_for(failure: Exception) -> str | None:
    """The fallback reason of a model's failure; None for an error no fallback covers."""
    for kind, reason in REASONS:
        if isinstance(failure, kind):
            return reason
    return None


def as_model_failure(exc: Exception, deployment: Deployment) -> Exception:
    """``exc`` as the request's error: servewell's own as they are, anything else a
    ModelFailed naming the model (a 500 that names it; the log has the traceback)."""
    if isinstance(exc, ServewellError):
        return exc
    failure = ModelFailed(
        f"{deployment.name}@{deployment.number} raised {type(exc).__name__}: {exc}"
    )
    failure.__cause__ = exc  # the log's traceback shows the model's own
    return failure


def is_fallback(reply: Reply) -> bool:
    """Whether a fallback gave ``reply`` (it must not be cached as the model's answer).
    Every answer the model gives is asked, and usually has no headers at all."""
    headers = reply.headers
    return bool(headers) and any(name == SERVED_BY for name, _ in headers)


class Fallbacks:
    """Every served version's chain (none: the model's error goes to the caller)."""

    def __init__(
        self,
        chains: Chains,
        predictor: Predictor,
        cache: ResponseCacheLayer | None,
        metrics: ServingMetrics,
    ) -> None:
        self.chains = chains
        self.predictor = predictor
        self.cache = cache
        self.metrics = metrics

    async def recover(self, exc: Exception, failed: Failed) -> Reply:
        """The first answer of the failed model's chain; else raises the model's error."""
        deployment = failed.deployment
        failure = as_model_failure(exc, deployment)
        reason = reason_for(failure)
        chain = self.chains.get((deployment.name, deployment.number)) if reason else None
        if reason is None or not chain:
            raise failure
        model = f"{deployment.name}@{deployment.number}"
        for target in chain:
            reply = await self._answer(target, failed)
            if reply is not None:
                self.metrics.count_fallback(deployment.name, reason, target.label)
                reply.headers.append((SERVED_BY, f"{target.label}; fallback={reason}".encode()))
                logger.warning(
                    "%s did not answer (%s: %s); %s did",
                    model,
                    reason,
                    failure,
                    target.label,
                    exc_info=failure if reason in ("error", "crashed") else None,
                )
                return reply
        self.metrics.count_fallback(deployment.name, reason, "none")
        logger.warning("%s did not answer (%s); no fallback did either", model, reason)
        raise failure

    async def _answer(self, target: Target, failed: Failed) -> Reply | None:
        try:
            if isinstance(target, ModelTarget):
                return await self._from_model(target, failed)
            if isinstance(target, CacheTarget):
                return await self._from_cache(failed)
            return self._from_default(target, failed)
        except Exception as exc:  # a target that fails hands over to the next one
            logger.warning(
                "fallback %s for %s@%d failed: %s: %s",
                target.label,
                failed.deployment.name,
                failed.deployment.number,
                type(exc).__name__,
                exc,
                exc_info=None if isinstance(exc, ServewellError) and exc.expose else exc,
            )
            return None

    async def _from_model(self, target: ModelTarget, failed: Failed) -> Reply | None:
        other = self.predictor.pool.get(target.name, target.version)
        deadline = _deadline(target.timeout_ms, failed)
        if deadline is None:
            return None  # the caller's time is up: only an answer at hand can help
        primary = failed.deployment.signature
        wanted = failed.request.outputs or tuple(spec.name for spec in primary.outputs)
        request = replace(failed.request, outputs=wanted or None)
        response = await self.predictor.infer(request, other, deadline=deadline)
        return failed.encode(response)

    async def _from_cache(self, failed: Failed) -> Reply | None:
        layer, key = self.cache, failed.cache_key
        cache_control = failed.headers.get(CACHE_CONTROL, b"")
        if layer is None or key is None or b"no-cache" in cache_control.lower():
            return None
        entry = await layer.get_stale(key)
        reply = None if entry is None else unpack_reply(entry)
        if reply is not None:
            reply.headers.append(STALE)
        return reply

    def _from_default(self, target: DefaultTarget, failed: Failed) -> Reply | None:
        request, deployment = failed.request, failed.deployment
        wanted = request.outputs or tuple(target.outputs)
        if any(name not in target.outputs for name in wanted):
            return None  # asked for an output the default does not give
        try:
            inputs = validate_inputs(
                deployment.signature, request.inputs, self.predictor.limits, request.datatypes
            )
        except InvalidInput:
            return None  # no answer for rows the model would not take
        rows = len(next(iter(inputs.values())))
        outputs = {name: np.repeat(target.outputs[name], rows, axis=0) for name in wanted}
        response = InferResponse(
            deployment.name, deployment.number, outputs, id=request.id, batch_size=rows
        )
        return failed.encode(response)


def _deadline(timeout_ms: float, failed: Failed) -> Deadline | None:
    """A fallback model's deadline: its own timeout, within the caller's own deadline;
    None when that has passed."""
    requested = failed.requested
    if requested is not None and requested.expired:
        return None
    return deadline_for(requested, timeout_ms)
