"""The latency budget the doctor's fixes name for a model: the deadline (``timeout_ms``),
the p99 alert threshold, and the p99 a load test should hold.

A local model answers in milliseconds: a 200 ms deadline, an alert at a p99 over 200 ms,
a load test held to a p99 under 50 ms. A chat model, or any remote one (an upstream: often
an LLM generating for seconds, streaming), would have every call cut off by those, so its
budget comes from what the doctor knows, best first:

1. the newest passing load test of the version: its worst step's p99, with headroom (the
   deadline 3x it, so the tail past the p99 still answers; the alert at 1.5x, when answers
   get half as slow again as measured);
2. the remote spec's timeouts: the upstream may be silent ``read_s`` before it answers, so
   the deadline is at least ``connect_s + read_s`` (a chat model's, no less than 3.);
3. for a chat model, 60 s: a long completion at a few dozen tokens a second, streamed,
   and the deadline covers the whole stream.

Without a load test the alert is at half the deadline: it fires before callers are cut off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from servewell.core.chat_signature import is_chat_signature

if TYPE_CHECKING:
    from servewell.core.remote_spec import RemoteSpec
    from servewell.doctor.context import Context, ServedModel

#: A local model's budget (ms): what the fixes have always named.
LOCAL_TIMEOUT_MS = 200.0
LOCAL_SLO_P99_MS = 50.0
#: A chat model's deadline (ms) when nothing better is known (see the module's 3.).
LLM_TIMEOUT_MS = 60_000.0
#: Headroom over a load test's p99: the deadline's, the alert's.
TIMEOUT_OVER_P99 = 3.0
ALERT_OVER_P99 = 1.5


@dataclass(frozen=True, slots=True)
class LatencyBudget:
    """What a fix suggests for one model, and why (for the fix's text)."""

    timeout_ms: float
    alert_ms: float
    slo_p99_ms: float
    why: str
    """Why this deadline (the fixes say it)."""
    alert_why: str = ""
    """Why this alert threshold; empty for a local model (the fixes say nothing)."""
    slow: bool = False
    """A chat or remote model: answers take seconds, not milliseconds."""


def latency_budget(context: Context, model: ServedModel) -> LatencyBudget:
    """The budget the fixes name for ``model`` (see the module docstring)."""
    version = model.production
    spec = _remote_spec(context, model)
    chat = version is not None and is_chat_signature(version.signature)
    if spec is None and not chat:
        return LatencyBudget(
            LOCAL_TIMEOUT_MS,
            LOCAL_TIMEOUT_MS,
            LOCAL_SLO_P99_MS,
            "the longest its callers should wait",
        )
    p99_ms = _load_test_p99_ms(context, model)
    if p99_ms is not None:
        alert = _round_up(p99_ms * ALERT_OVER_P99)
        measured = f"the p99 of its last load test, {to_duration(p99_ms)}"
        timeout = _round_up(p99_ms * TIMEOUT_OVER_P99)
        return LatencyBudget(timeout, alert, alert, f"3x {measured}", f"1.5x {measured}", True)
    kind = "a chat model's answers take seconds and stream"
    if spec is not None:
        upstream_ms = (spec.timeouts.connect_s + spec.timeouts.read_s) * 1000
        timeout = max(upstream_ms, LLM_TIMEOUT_MS) if chat else upstream_ms
        why = f"its upstream may take {to_duration(upstream_ms)} (connect_s + read_s)"
        why = f"{why}; {kind}, no less than {to_duration(LLM_TIMEOUT_MS)}" if chat else why
    else:
        timeout, why = LLM_TIMEOUT_MS, f"{kind}; no load test to go by"
    alert_why = f"half the {to_duration(timeout)} deadline it needs: {why}"
    return LatencyBudget(timeout, timeout / 2, timeout / 2, why, alert_why, True)


def to_duration(ms: float) -> str:
    """``200ms``, ``30s``: a duration as servewell.yaml and an SLO write it."""
    return f"{ms / 1000:g}s" if ms >= 1000 else f"{ms:g}ms"


def _round_up(ms: float) -> float:
    """Up to a whole second past one, else up to 10 ms: a figure a person would write."""
    step = 1000 if ms >= 1000 else 10
    return float(math.ceil(ms / step) * step)


def _remote_spec(context: Context, model: ServedModel) -> RemoteSpec | None:
    """The production version's remote spec; None for a local model (or an unreadable
    spec, which the versioning check fails)."""
    from servewell.core.remote_spec import read_remote_spec
    from servewell.errors import ServewellError
    from servewell.registry import ORIGINAL
    from servewell.runtime.factory import REMOTE

    version = model.production
    if version is None or version.format != REMOTE:
        return None
    artifact = version.artifact(ORIGINAL)
    try:
        return read_remote_spec(context.services.artifacts.fetch(artifact.uri, artifact.sha256))
    except ServewellError:
        return None


def _load_test_p99_ms(context: Context, model: ServedModel) -> float | None:
    """The worst step's p99 of the production version's newest load test, if it passed."""
    from servewell.registry.loadtests import LoadTestStore

    if model.production is None:
        return None
    latest = LoadTestStore(context.services.registry).latest(model.name, model.production.version)
    if latest is None or not latest.passed:
        return None
    steps = latest.summary.get("steps") or []
    p99s = [float(step.get("latency_ms", {}).get("p99") or 0) for step in steps]
    return max(p99s, default=0.0) or None
