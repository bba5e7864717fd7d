"""Load testing: the newest recorded ``servewell loadtest`` of each production version
passed its SLO, within the last 30 days (``registry/loadtests.py``)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from servewell.doctor.finding import Finding, failed, passed, warned
from servewell.doctor.latency import latency_budget, to_duration

if TYPE_CHECKING:
    from servewell.doctor.context import Context, ServedModel
    from servewell.registry.loadtests import LoadTestStore

ITEM = "load testing"
#: A load test older than this says little about the server as it runs now.
FRESH_FOR = timedelta(days=30)


class LoadTestCheck:
    """A recent, passing load test of what production serves."""

    item = ITEM

    def run(self, context: Context) -> list[Finding]:
        from servewell.registry.loadtests import LoadTestStore

        store = LoadTestStore(context.services.registry)
        findings = []
        for model in context.models:
            if model.production is None:
                continue  # versioning fails it: no production version to have tested
            findings.append(_model_finding(context, model, store))
        return findings


def _model_finding(context: Context, model: ServedModel, store: LoadTestStore) -> Finding:
    assert model.production is not None  # run() skips the others
    version = model.production.version
    url = context.live.url if context.live is not None else "http://<host>:<port>"
    p99 = to_duration(latency_budget(context, model).slo_p99_ms)
    # a server with keys refuses the load test without one: the fix names where it goes
    key = ' --api-key "$SERVEWELL_API_KEY"' if context.auth_on else ""
    fix = (
        f"servewell loadtest {url} --model {model.name} --version {version}{key} "
        f"--concurrency 1,16,64 --slo 'p99<{p99},errors<0.1%'"
    )
    latest = store.latest(model.name, version)
    if latest is None:
        return failed(ITEM, f"no load test recorded for {model.name}@{version}", fix, model.name)
    age = context.now - latest.started_at
    when = f"{latest.started_at:%Y-%m-%d %H:%M} UTC ({age.days} days ago)"
    if not latest.passed:
        return failed(ITEM, f"the last one, {when}, failed its SLO ({latest.slo})", fix, model.name)
    if not latest.slo:
        return warned(ITEM, f"the last one, {when}, had no SLO to hold", fix, model.name)
    slo = latest.slo
    if age > FRESH_FOR:
        return failed(
            ITEM, f"the last one passed ({slo}) but {when}: older than 30 days", fix, model.name
        )
    return passed(ITEM, f"{model.name}@{version} passed {slo}, {when}", model.name)
