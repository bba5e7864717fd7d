"""The model card: a short Markdown page on what a model is for and how far to trust it."""

from __future__ import annotations

from servewell.reports.record import TrainingReport
from servewell.stats import ClassificationMetrics

#: Features (at most) the card lists with their scores alone.
TOP_FEATURES = 5


def _features_alone(report: TrainingReport) -> list[str]:
    """The strongest features scored alone, out of sample (the leakage check's figures)."""
    leakage = next((c for c in report.checks if c["name"] == "leakage"), None)
    scores = leakage["figures"].get("features", []) if leakage is not None else []
    if not scores:
        return []
    lines = ["", "Strongest features alone, out of sample:", ""]
    for score in scores[:TOP_FEATURES]:
        figures = ", ".join(
            f"{k.replace('_', ' ')} {v:.3f}" for k, v in score.items() if isinstance(v, float)
        )
        flag = " — **suspect**" if score.get("suspect") else ""
        lines.append(f"- `{score['column']}`: {figures}{flag}")
    return lines


def model_card(report: TrainingReport) -> str:
    """Intended use, data, metrics and checks, in Markdown."""
    data, features = report.data, report.features
    use = report.config["register"]["intended_use"] or (
        f"Predict `{report.target}` ({report.task}) from rows shaped like the training data. "
        "Not validated outside that data's population and time range."
    )
    model_columns = len(features["numeric"]) + len(features["categorical"])
    lines = [
        f"# Model card: {report.name}",
        "",
        "## Intended use",
        "",
        use,
        "",
        "## Data",
        "",
        f"- source: `{data['source']}` (sha256 `{data['sha256'][:16]}…`, {data['rows']} rows x "
        f"{data['columns']} columns)",
        f"- after cleaning: {report.cleaning['rows_out']} rows; "
        + ("; ".join(report.cleaning_notes) or "nothing dropped"),
        f"- inputs: {', '.join(f'`{name}`' for name in features['inputs'])}",
        f"- model: {report.config['estimator']['kind']} on {model_columns} features "
        f"({len(features['derived'])} derived)",
        "",
        "## Validation metrics",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {value:.4f} |" for name, value in report.metrics.headline().items()),
    ]
    if isinstance(report.metrics, ClassificationMetrics):
        lines += ["", "| class | precision | recall | f1 | support |", "|---|---|---|---|---|"]
        lines += [
            f"| {label} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | {m.support} |"
            for label, m in report.metrics.per_class.items()
        ]
    lines += ["", "## Checks", ""]
    lines += [f"- **{c['name']}** ({c['status']}): {c['message']}" for c in report.checks]
    lines += _features_alone(report)
    lines += ["", "## Gate", ""]
    lines += [f"- {'pass' if g['passed'] else 'FAIL'}: {g['message']}" for g in report.gate]
    if not report.gate:
        lines.append("- no thresholds configured")
    return "\n".join(lines) + "\n"
