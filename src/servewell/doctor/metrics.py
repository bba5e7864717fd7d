"""Metrics: ``/metrics`` answers and parses as Prometheus text, with servewell's own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servewell.doctor.finding import Finding, failed, passed, warned

if TYPE_CHECKING:
    from servewell.doctor.context import Context

ITEM = "metrics"
URL_FIX = "servewell doctor --url http://<host>:<port> --api-key <key>"


class MetricsCheck:
    """Scrape ``/metrics`` once and parse it."""

    item = ITEM

    def run(self, context: Context) -> list[Finding]:
        if context.live is None:
            return [warned(ITEM, "not scraped: no server given", URL_FIX)]
        answer = context.live.answer("/metrics")
        fix = "scrape /metrics from the server's own port; keep /metrics in auth.open_paths"
        if not answer.ok:
            return [failed(ITEM, f"/metrics: {answer.describe()}", fix)]
        from prometheus_client.parser import text_string_to_metric_families

        try:
            names = [family.name for family in text_string_to_metric_families(answer.text)]
        except ValueError as exc:
            return [failed(ITEM, f"/metrics does not parse as Prometheus text: {exc}", fix)]
        ours = [name for name in names if name.startswith("servewell_")]
        if not ours:
            return [failed(ITEM, "/metrics parses but holds no servewell_* metric", fix)]
        return [passed(ITEM, f"/metrics parses: {len(ours)} servewell_* metric families")]
