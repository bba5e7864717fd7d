"""Registering a training result that passed its gate, with everything it learnt attached:
the reference profile, the model card, the report (JSON and HTML) and the validation split."""

from __future__ import annotations

from typing import Any

from servewell.errors import GateFailed
from servewell.registration.register import RegisterOptions, register_estimator
from servewell.registry import ModelVersion, RegistryAccess
from servewell.registry.attachments import PROFILE_ROLE
from servewell.reports.card import model_card
from servewell.reports.report import report_html, report_json
from servewell.training.profile import compact_json
from servewell.training.progress import Progress, StageLog
from servewell.training.result import PipelineResult
from servewell.training.served import Served, choose_served

#: Validation rows (at most) attached to the version as ``validation.csv``, the rows
#: ``servewell optimize`` judges the version on when given no ``--eval``.
VALIDATION_ROWS = 100_000
#: The attachment holding the model card (what the model is for, its data, its limits).
MODEL_CARD_ROLE = "model_card.md"
#: The attachment holding the training report: the data, configuration and checks run.
REPORT_ROLE = "report.json"


def register_result(
    access: RegistryAccess,
    result: PipelineResult,
    progress: Progress | None = None,
    *,
    by: str | None = None,
    served: Served | None = None,
) -> ModelVersion:
    """Register a result that passed its gate, with its profile, card, report and
    validation split (``validation.csv``, read by ``servewell optimize``) attached
    (``by``: who, the author of its alias move; ``served``: what will serve it, when
    already chosen and scored, as ``servewell retrain`` does before comparing)."""
    if not result.passed:
        raise GateFailed(result.failures)
    log = StageLog(progress)
    served = served or choose_served(log, result)
    result.served_metrics = served.metrics
    result.stages.extend(log.summaries)  # the report shows how the model will serve
    log = StageLog(progress)
    with log.stage("register") as summary:
        report = result.report()
        options = RegisterOptions(
            signature=result.signature,
            metrics=_registry_metrics(result),
            params=_registry_params(result),
            tags={
                "task": result.task,
                "pipeline": "servewell train",
                **result.config.registration.tags,
            },
            alias=result.config.registration.alias,
            by=by,
            description=result.config.registration.description,
            sample=result.sample,
            conversion=served.conversion,
            convert=served.conversion is not None,
            attachments={
                PROFILE_ROLE: compact_json(result.profile),
                MODEL_CARD_ROLE: model_card(report).encode("utf-8"),
                REPORT_ROLE: report_json(report).encode("utf-8"),
                "report.html": report_html(report).encode("utf-8"),
                **_validation_attachment(result),
            },
        )
        version = register_estimator(access, result.name, result.model, options=options)
        result.version = version
        how = "ONNX" if version.has_artifact("onnx") else "scikit-learn"
        summary.lines = [f"registered {version.name}@{version.version} (serves via {how})"]
    result.stages.extend(log.summaries)
    return version


def _registry_metrics(result: PipelineResult) -> dict[str, Any]:
    """The served artifact's validation metrics (the pipeline's, if never scored)."""
    scored = result.served_metrics or result.metrics
    metrics: dict[str, Any] = dict(scored.headline())
    metrics["validation_rows"] = len(result.validation_truth)
    latency = next(c for c in result.checks if c.name == "latency")
    metrics |= {"p50_ms": latency.figures["p50_ms"], "p99_ms": latency.figures["p99_ms"]}
    return metrics


def _registry_params(result: PipelineResult) -> dict[str, Any]:
    return {
        "pipeline": result.config.model_dump(mode="json", by_alias=True),
        "estimator": result.config.estimator.kind,
        "target": result.config.target,
        "task": result.task,
        "positive_label": result.positive_label,
        "data": result.dataset.fingerprint.to_dict(),
        "rows_after_cleaning": result.cleaning.rows_out,
        **({"challenge": result.challenge} if result.challenge is not None else {}),
    }


def _validation_attachment(result: PipelineResult) -> dict[str, bytes]:
    if result.validation_frame is None:
        return {}
    rows = result.validation_frame.head(VALIDATION_ROWS)
    return {"validation.csv": rows.to_csv(index=False).encode("utf-8")}
