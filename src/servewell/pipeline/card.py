"""The model card: a short Markdown page on what a model is for and how far to trust it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servewell.stats import ClassificationMetrics

if TYPE_CHECKING:
    from servewell.pipeline.run import PipelineResult


def model_card(result: PipelineResult) -> str:
    """Intended use, data, metrics and checks, in Markdown."""
    config, data = result.config, result.dataset.fingerprint
    use = config.registration.intended_use or (
        f"Predict `{config.target}` ({result.task}) from rows shaped like the training data. "
        "Not validated outside that data's population and time range."
    )
    lines = [
        f"# Model card: {result.name}",
        "",
        "## Intended use",
        "",
        use,
        "",
        "## Data",
        "",
        f"- source: `{data.source}` (sha256 `{data.sha256[:16]}…`, {data.rows} rows x "
        f"{data.columns} columns)",
        f"- after cleaning: {result.cleaning.rows_out} rows; "
        + ("; ".join(result.cleaning.lines()) or "nothing dropped"),
        f"- inputs: {', '.join(f'`{name}`' for name in result.plan.inputs)}",
        f"- model: {config.estimator.kind} on {len(result.plan.model_columns)} features "
        f"({len(result.plan.derived)} derived)",
        "",
        "## Validation metrics",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {value:.4f} |" for name, value in result.metrics.headline().items()),
    ]
    if isinstance(result.metrics, ClassificationMetrics):
        lines += ["", "| class | precision | recall | f1 | support |", "|---|---|---|---|---|"]
        lines += [
            f"| {label} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | {m.support} |"
            for label, m in result.metrics.per_class.items()
        ]
    lines += ["", "## Checks", ""]
    lines += [f"- **{c.name}** ({c.status}): {c.message}" for c in result.checks]
    lines += ["", "## Gate", ""]
    lines += [f"- {'pass' if g.passed else 'FAIL'}: {g.message}" for g in result.gate]
    if not result.gate:
        lines.append("- no thresholds configured")
    return "\n".join(lines) + "\n"
