"""Logging: the JSON access line is on; what is logged holds no bodies or secrets.
The access line is written without bodies or keys by construction
(``observability/access.access_fields``); what a setting can change is whether it is
written, and what the prediction log keeps of each model's inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servewell.doctor.finding import Finding, failed, passed, warned

if TYPE_CHECKING:
    from servewell.doctor.context import Context, ServedModel

ITEM = "logging"


class LoggingCheck:
    """Access log on; prediction-log inputs hashed with a secret key where text is kept."""

    item = ITEM

    def run(self, context: Context) -> list[Finding]:
        if not context.settings.server.access_log:
            return [
                failed(
                    ITEM,
                    "server.access_log is false: no line per request to trace a call by",
                    "server: {access_log: true} in servewell.yaml",
                )
            ]
        findings = [
            passed(ITEM, "JSON access line per request (never a body or a key)"),
        ]
        findings.extend(
            finding
            for model in context.models
            if (finding := _inputs_finding(context, model)) is not None
        )
        return findings


def _inputs_finding(context: Context, model: ServedModel) -> Finding | None:
    """Text inputs kept whole in the prediction log may hold personal data; hashed with
    the built-in key, a guessed value can be checked against the hash."""
    version = model.production
    if version is None:
        return None
    has_text = any(spec.datatype == "BYTES" for spec in version.signature.inputs)
    keeps = model.settings.monitoring.log_inputs or ("hash" if has_text else "full")
    if has_text and keeps == "full":
        return warned(
            ITEM,
            "the prediction log keeps its text inputs whole",
            f"models: {{{model.name}: {{monitoring: {{log_inputs: hash}}}}}} in servewell.yaml",
            model.name,
        )
    if keeps == "hash" and context.settings.monitoring.hash_key is None:
        return warned(
            ITEM,
            "its inputs are hashed with the built-in key: a guessed value can be checked",
            "SERVEWELL_MONITORING__HASH_KEY=<a secret> in the server's environment",
            model.name,
        )
    return None
