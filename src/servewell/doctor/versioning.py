"""Model versioning and the registry: every served model has a ``production`` alias,
its artifacts still hash to what was registered, and it says where it came from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servewell.doctor.finding import Finding, failed, passed, warned
from servewell.training.register import REPORT_ROLE

if TYPE_CHECKING:
    from servewell.doctor.context import Context, ServedModel
    from servewell.registry import ModelVersion

ITEM = "versioning"


class VersioningCheck:
    """``production`` alias, artifacts verified, lineage."""

    item = ITEM

    def run(self, context: Context) -> list[Finding]:
        if not context.models:
            return [
                failed(
                    ITEM, "no model is registered", "servewell register MODEL --alias production"
                )
            ]
        findings = []
        for model in context.models:
            findings.extend(_model_findings(context, model))
        return findings


def _model_findings(context: Context, model: ServedModel) -> list[Finding]:
    version = model.production
    if version is None:
        return [
            failed(
                ITEM,
                "no 'production' alias: which version serves is whatever is newest",
                f"servewell alias set {model.name} production <version>",
                model.name,
            )
        ]
    findings = [_integrity(context, version), _lineage(version)]
    served = context.live.served_models() if context.live is not None else None
    if served is not None and served.get(model.name, version.version) != version.version:
        findings.append(
            warned(
                f"{ITEM}: served version",
                f"the server answers {model.name} with v{served[model.name]} while "
                f"production names v{version.version}",
                f"serve {model.name} by its alias (server.models: [{model.name}]) rather "
                "than a pinned version",
                model.name,
            )
        )
    return findings


def _integrity(context: Context, version: ModelVersion) -> Finding:
    """The registry's own check (the store's ``fetch``: the bytes still hash to the
    recorded sha256), on every artifact of the production version."""
    from servewell.errors import ServewellError

    for artifact in version.artifacts:
        try:
            context.services.artifacts.fetch(artifact.uri, artifact.sha256)
        except ServewellError as exc:
            return failed(
                ITEM,
                f"{version.name}@{version.version}'s {artifact.role}: {exc.message}",
                "register the model again (servewell register ... --alias production); "
                "then servewell gc",
                version.name,
            )
    return passed(
        ITEM,
        f"production is {version.name}@{version.version}; its {len(version.artifacts)} "
        "artifact(s) match their registered sha256",
        version.name,
    )


def _lineage(version: ModelVersion) -> Finding:
    """Where a version came from: a parent version, the training record, or a tag."""
    if version.parent is not None:
        found = f"derived from {version.parent.name}@{version.parent.version}"
    elif version.has_artifact(REPORT_ROLE):
        found = f"trained by servewell ({REPORT_ROLE} records data and configuration)"
    elif "source" in version.tags:
        found = f"source: {version.tags['source']}"
    else:
        return warned(
            f"{ITEM}: lineage",
            f"{version.name}@{version.version} records no parent, training run or source",
            "register the next version with --parent NAME@N or --tag source=<commit or run>, "
            "or train it with servewell train",
            version.name,
        )
    return passed(f"{ITEM}: lineage", found, version.name)
