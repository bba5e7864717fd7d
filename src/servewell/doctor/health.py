"""Health checks: liveness and readiness answer. Readiness waits for warm-up by
construction (it turns true once every model has loaded and warmed up,
``http/running``); what the server can be asked is whether both answer now."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servewell.doctor.finding import Finding, failed, passed, warned
from servewell.doctor.metrics import URL_FIX

if TYPE_CHECKING:
    from servewell.doctor.context import Context

ITEM = "health checks"
PROBES = ("/v2/health/live", "/v2/health/ready")


class HealthCheck:
    """``/v2/health/live`` and ``/v2/health/ready`` both 200."""

    item = ITEM

    def run(self, context: Context) -> list[Finding]:
        if context.live is None:
            return [warned(ITEM, "not asked: no server given", URL_FIX)]
        answers = {path: context.live.answer(path) for path in PROBES}
        bad = [f"{path}: {answer.describe()}" for path, answer in answers.items() if not answer.ok]
        if bad:
            return [
                failed(
                    ITEM,
                    "; ".join(bad),
                    "point the liveness probe at /v2/health/live and readiness at "
                    "/v2/health/ready; a 503 from ready means models are still loading "
                    "or failed (the server's log says which)",
                )
            ]
        return [passed(ITEM, "live and ready answer 200 (ready only once every model warmed up)")]
