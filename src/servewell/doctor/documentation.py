"""Documentation: each production version has a model card, and the server serves its
API's description (``/openapi.json``, browsable at ``/docs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servewell.doctor.finding import Finding, failed, passed, warned
from servewell.doctor.metrics import URL_FIX
from servewell.training.register import MODEL_CARD_ROLE

if TYPE_CHECKING:
    from servewell.doctor.context import Context

ITEM = "documentation"
DOC_PATHS = ("/openapi.json", "/docs")


class DocumentationCheck:
    """Model cards in the registry; API docs on the server."""

    item = ITEM

    def run(self, context: Context) -> list[Finding]:
        findings = [_api_docs(context)]
        for model in context.models:
            version = model.production
            if version is None:
                continue
            if version.has_artifact(MODEL_CARD_ROLE):
                findings.append(passed(f"{ITEM}: model card", MODEL_CARD_ROLE, model.name))
            else:
                findings.append(
                    warned(
                        f"{ITEM}: model card",
                        f"{version.name}@{version.version} has no model card",
                        "train it with servewell train, which attaches model_card.md "
                        "(a file registered by hand has no command to attach one yet)",
                        model.name,
                    )
                )
        return findings


def _api_docs(context: Context) -> Finding:
    if context.live is None:
        return warned(f"{ITEM}: API docs", "not asked: no server given", URL_FIX)
    answers = {path: context.live.answer(path) for path in DOC_PATHS}
    served = [path for path, answer in answers.items() if answer.ok]
    if not served:
        return failed(
            f"{ITEM}: API docs",
            "; ".join(f"{path}: {answer.describe()}" for path, answer in answers.items()),
            "keep /docs and /openapi.json in auth.open_paths",
        )
    return passed(f"{ITEM}: API docs", f"served at {', '.join(served)}")
