"""Versioning, load testing, monitoring and documentation: what the registry holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from doctor_context import MakeContext, attach, statuses
from servewell.bootstrap import Services
from servewell.doctor.documentation import DocumentationCheck
from servewell.doctor.finding import Status
from servewell.doctor.loadtesting import LoadTestCheck
from servewell.doctor.monitoring import MonitoringCheck
from servewell.doctor.versioning import VersioningCheck
from servewell.registry.attachments import PROFILE_ROLE
from servewell.registry.loadtests import LoadTestStore
from servewell.training.register import MODEL_CARD_ROLE, REPORT_ROLE
from serving_models import register_python

RULE = {
    "name": "fraud-p99",
    "model": "fraud",
    "metric": "p99_latency_ms",
    "op": ">",
    "threshold": 200,
}


def test_versioning_passes_a_verified_production_version(
    fraud: Services, make_context: MakeContext
) -> None:
    attach(fraud, REPORT_ROLE)
    findings = VersioningCheck().run(make_context())
    assert statuses(findings) == ["pass", "pass"]
    assert "match their registered sha256" in findings[0].found


def test_versioning_fails_a_model_without_production(
    fraud: Services, make_context: MakeContext
) -> None:
    register_python(fraud, "scorer", "sum", signature="sum.json")
    findings = [f for f in VersioningCheck().run(make_context()) if f.model == "scorer"]
    assert [f.status for f in findings] == [Status.FAIL]
    assert findings[0].fix == "servewell alias set scorer production <version>"


def test_versioning_fails_a_tampered_artifact(fraud: Services, make_context: MakeContext) -> None:
    version = fraud.registry.get_version("fraud", 1)
    fraud.artifacts.path_of(version.artifact_uri).write_bytes(b"changed")
    findings = VersioningCheck().run(make_context())
    assert findings[0].status is Status.FAIL
    assert "modified after registration" in findings[0].found


def test_versioning_warns_of_a_version_without_lineage(make_context: MakeContext) -> None:
    lineage = VersioningCheck().run(make_context())[1]
    assert lineage.status is Status.WARN
    assert "--parent" in lineage.fix


def test_load_testing_fails_without_a_record_and_passes_with_a_recent_one(
    fraud: Services, make_context: MakeContext
) -> None:
    before = LoadTestCheck().run(make_context())
    assert statuses(before) == ["fail"]
    assert before[0].fix.startswith("servewell loadtest http://<host>:<port> --model fraud")
    assert '--api-key "$SERVEWELL_API_KEY"' in before[0].fix  # keys are on: it needs one
    without_keys = LoadTestCheck().run(make_context(auth={"enabled": False}))
    assert "--api-key" not in without_keys[0].fix
    LoadTestStore(fraud.registry).record("fraud", 1, passed=True, slo="p99<50ms", summary={})
    after = LoadTestCheck().run(make_context())
    assert statuses(after) == ["pass"]
    assert "p99<50ms" in after[0].found


def test_load_testing_fails_a_failed_or_old_test_and_warns_of_one_without_slo(
    fraud: Services, make_context: MakeContext
) -> None:
    store = LoadTestStore(fraud.registry)
    old = datetime.now(UTC) - timedelta(days=31)
    store.record("fraud", 1, passed=True, slo="p99<50ms", summary={}, started_at=old)
    assert "older than 30 days" in LoadTestCheck().run(make_context())[0].found
    store.record("fraud", 1, passed=False, slo="p99<1ms", summary={})
    assert "failed its SLO (p99<1ms)" in LoadTestCheck().run(make_context())[0].found
    store.record("fraud", 1, passed=True, slo="", summary={})
    assert statuses(LoadTestCheck().run(make_context())) == ["warn"]


def test_load_testing_judges_the_production_version(
    fraud: Services, make_context: MakeContext
) -> None:
    register_python(fraud, "fraud", "sum", signature="sum.json")
    LoadTestStore(fraud.registry).record("fraud", 2, passed=True, slo="p99<50ms", summary={})
    assert "fraud@1" in LoadTestCheck().run(make_context())[0].found


def test_monitoring_fails_without_a_profile_or_an_alert_rule(make_context: MakeContext) -> None:
    findings = MonitoringCheck().run(make_context())
    assert statuses(findings) == ["pass", "fail", "fail"]
    assert findings[1].fix == "servewell profile fraud <its inputs.csv> --version 1"


def test_monitoring_passes_with_a_profile_and_a_rule(
    fraud: Services, make_context: MakeContext
) -> None:
    attach(fraud, PROFILE_ROLE)
    findings = MonitoringCheck().run(make_context(monitoring={"alerts": [RULE]}))
    assert statuses(findings) == ["pass", "pass", "pass"]
    assert findings[2].found == "fraud-p99"


def test_monitoring_fails_a_model_whose_predictions_are_not_logged(
    make_context: MakeContext,
) -> None:
    context = make_context(models={"fraud": {"monitoring": {"sample_rate": 0}}})
    assert MonitoringCheck().run(context)[0].status is Status.FAIL


def test_documentation_warns_without_a_model_card_and_passes_with_one(
    fraud: Services, make_context: MakeContext
) -> None:
    assert statuses(DocumentationCheck().run(make_context()), "documentation: model card") == [
        "warn"
    ]
    attach(fraud, MODEL_CARD_ROLE, b"# fraud")
    assert statuses(DocumentationCheck().run(make_context()), "documentation: model card") == [
        "pass"
    ]
