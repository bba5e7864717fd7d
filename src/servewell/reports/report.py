"""The training report: every figure as JSON, and a self-contained HTML page with plots."""

from __future__ import annotations

import json
from html import escape
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from servewell.reports import plots
from servewell.reports.record import TrainingReport
from servewell.stats import ClassificationMetrics, RegressionMetrics


def write_report(report: TrainingReport, folder: Path) -> tuple[Path, Path]:
    """``report.json`` and ``report.html`` in ``folder`` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "report.json", folder / "report.html"
    json_path.write_text(report_json(report), encoding="utf-8")
    html_path.write_text(report_html(report), encoding="utf-8")
    return json_path, html_path


def report_data(report: TrainingReport) -> dict[str, Any]:
    """Every figure of the run, JSON-able."""
    metrics = report.metrics
    return {
        "name": report.name,
        "task": report.task,
        "target": report.target,
        "version": report.version,
        "passed": report.passed,
        "data": report.data,
        "schema": report.schema,
        "stages": report.stages,
        "cleaning": report.cleaning,
        "features": report.features,
        "training": report.training,
        "cross_validation": report.cross_validation,
        "metrics": (
            metrics.to_dict(curves=True)
            if isinstance(metrics, ClassificationMetrics)
            else metrics.to_dict()
        ),
        "train_metrics": report.train_metrics.headline(),
        "checks": report.checks,
        "gate": report.gate,
        "signature": report.signature,
        "config": report.config,
        "challenge": report.challenge,
    }


def report_json(report: TrainingReport) -> str:
    return json.dumps(report_data(report), indent=2, default=_plain)


def report_html(report: TrainingReport) -> str:
    template = Template(files("servewell.reports").joinpath("report.html").read_text("utf-8"))
    data = report.data
    subtitle = (
        f"{report.task} of <code>{escape(str(report.target))}</code> with "
        f"{escape(report.config['estimator']['kind'])} · data {escape(Path(data['source']).name)} "
        f"({data['rows']:,} rows &times; {data['columns']} columns, sha256 {data['sha256'][:12]}…)"
    )
    sections = [
        _verdict(report),
        _challenge_section(report),
        _metrics_section(report),
        _figures_section(report),
        _checks_section(report),
        _stages_section(report),
        _schema_section(report),
    ]
    return template.substitute(
        title=escape(f"Training report: {report.name}"),
        subtitle=subtitle,
        body="\n".join(s for s in sections if s),
    )


def _verdict(report: TrainingReport) -> str:
    if report.version is not None:
        text = (
            f'<span class="badge pass">registered</span> as '
            f"<code>{escape(report.version['name'])}@{report.version['version']}</code>"
        )
    elif report.passed:
        text = '<span class="badge pass">gate passed</span>'
    else:
        text = '<span class="badge fail">gate failed</span> — nothing was registered'
    rows = (
        "".join(
            f"<tr><td>{_badge('pass' if g['passed'] else 'fail')}</td>"
            f"<td>{escape(g['message'])}</td></tr>"
            for g in report.gate
        )
        or '<tr><td colspan="2" class="muted">no thresholds configured</td></tr>'
    )
    return (
        f'<section><h2>Verdict</h2><p class="verdict">{text}</p>'
        f"<table><tr><th>gate</th><th>criterion</th></tr>{rows}</table></section>"
    )


def _challenge_section(report: TrainingReport) -> str:
    """A retrained challenger beside its champion, on the same validation rows."""
    challenge = report.challenge
    if challenge is None:
        return ""
    champion, metrics = escape(challenge["champion"]), challenge["metrics"]
    compared = {c["metric"]: c for c in challenge["compared"]}
    rows = ""
    for name, mine in metrics["challenger"].items():
        theirs = metrics["champion"].get(name, float("nan"))
        mark = compared.get(name)
        badge = "" if mark is None else _badge("pass" if mark["passed"] else "fail")
        rows += (
            f"<tr><td>{escape(name)}</td><td class='num'>{theirs:.4f}</td>"
            f"<td class='num'>{mine:.4f}</td><td class='num'>{mine - theirs:+.4f}</td>"
            f"<td>{badge}</td></tr>"
        )
    verdict = "beats or matches" if challenge["won"] else "loses to"
    return (
        f"<section><h2>Challenger against champion</h2><p>This model {verdict} "
        f"<code>{champion}</code> on the same {challenge['rows']:,} validation rows "
        f"(margin {challenge['margin']:g}; compared: "
        f"{escape(', '.join(compared))}).</p><table><tr><th>metric</th>"
        f"<th>champion {champion}</th><th>challenger</th><th>change</th><th></th></tr>"
        f"{rows}</table></section>"
    )


def _metrics_section(report: TrainingReport) -> str:
    valid, train = report.metrics.headline(), report.train_metrics.headline()
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td class='num'>{value:.4f}</td>"
        f"<td class='num'>{train.get(name, float('nan')):.4f}</td></tr>"
        for name, value in valid.items()
    )
    html = (
        "<section><h2>Metrics</h2><table><tr><th>metric</th><th>validation</th>"
        f"<th>training</th></tr>{rows}</table>"
    )
    if report.cross_validation:
        cv = report.cross_validation
        html += (
            f"<p>{cv['folds']}-fold cross-validated {cv['metric']} on the training part: "
            f"{cv['mean']:.4f} ± {cv['std']:.4f}</p>"
        )
    if isinstance(report.metrics, ClassificationMetrics):
        per_class = "".join(
            f"<tr><td>{escape(label)}</td><td class='num'>{m.precision:.3f}</td>"
            f"<td class='num'>{m.recall:.3f}</td><td class='num'>{m.f1:.3f}</td>"
            f"<td class='num'>{m.support}</td></tr>"
            for label, m in report.metrics.per_class.items()
        )
        html += (
            "<h2 style='margin-top:16px'>Per class</h2><table><tr><th>class</th>"
            "<th>precision</th><th>recall</th><th>f1</th><th>support</th></tr>"
            f"{per_class}</table>"
        )
    return html + "</section>"


def validation_figures(report: TrainingReport) -> list[Figure]:
    """The validation plots: a classifier's confusion matrix, ROC and PR curves (binary),
    reliability and per-class bars; a regressor's predicted-vs-actual and residuals."""
    metrics = report.metrics
    if isinstance(metrics, RegressionMetrics):
        assert report.validation_values is not None
        return [plots.regression_plot(report.validation_truth, report.validation_values)]
    figures = [plots.confusion_plot(metrics)]
    if metrics.roc_curve is not None and metrics.roc_auc is not None:
        figures.append(
            plots.curve_plot(
                metrics.roc_curve,
                title="ROC curve",
                x_label="false positive rate",
                y_label="true positive rate",
                area=metrics.roc_auc,
                diagonal=True,
            )
        )
    if metrics.pr_curve is not None and metrics.pr_auc is not None:
        figures.append(
            plots.curve_plot(
                metrics.pr_curve,
                title="Precision-recall curve",
                x_label="recall",
                y_label="precision",
                area=metrics.pr_auc,
                diagonal=False,
                baseline=metrics.prevalence,
            )
        )
    if metrics.calibration_curve is not None:
        figures.append(
            plots.reliability_plot(
                metrics.calibration_curve,
                brier=metrics.brier_score,
                binary=metrics.positive_label is not None,
            )
        )
    return [*figures, plots.per_class_plot(metrics)]


def distributions_figure(report: TrainingReport) -> Figure | None:
    """Each raw input's distribution on the training rows (missing values shown)."""
    return plots.distributions_plot(report.profile, report.features["inputs"])


def _figures_section(report: TrainingReport) -> str:
    images = [plots.to_png(figure) for figure in validation_figures(report)]
    training = plots.training_plot(report.training)
    distributions = distributions_figure(report)
    html = "<section><h2>Validation plots</h2><div class='figures'>"
    html += "".join(f'<img alt="plot" src="{src}">' for src in images) + "</div></section>"
    if training is not None:
        html += (
            f"<section><h2>Training curve</h2><p>{escape(report.training['note'])}</p>"
            f'<div class="figures"><img alt="training curve" src="{plots.to_png(training)}">'
            "</div></section>"
        )
    if distributions is not None:
        html += (
            "<section><h2>Feature distributions (training rows)</h2>"
            f'<div class="figures"><img alt="distributions" src="{plots.to_png(distributions)}">'
            "</div></section>"
        )
    return html


def _checks_section(report: TrainingReport) -> str:
    rows = "".join(
        f"<tr><td>{_badge(c['status'])}</td><td>{escape(c['name'])}</td>"
        f"<td>{escape(c['message'])}</td></tr>"
        for c in report.checks
    )
    return (
        f"<section><h2>Checks</h2><table><tr><th></th><th>check</th><th>finding</th></tr>"
        f"{rows}</table>{_features_alone(report)}</section>"
    )


#: Columns of the single-feature table, and how the report names them.
FEATURE_MEASURES = {
    "balanced_accuracy": "balanced accuracy",
    "roc_auc": "ROC-AUC",
    "average_precision": "average precision",
    "r2": "R²",
}
#: Features (at most) the single-feature table lists.
TOP_FEATURES = 10


def _features_alone(report: TrainingReport) -> str:
    """The strongest features scored alone, out of sample (the leakage check's figures)."""
    leakage = next((c for c in report.checks if c["name"] == "leakage"), None)
    if leakage is None or not leakage["figures"].get("features"):
        return ""
    scores = leakage["figures"]["features"]
    measures = [m for m in FEATURE_MEASURES if any(m in s for s in scores)]
    head = "".join(f"<th>{FEATURE_MEASURES[m]}</th>" for m in measures)
    rows = "".join(
        f"<tr><td><code>{escape(s['column'])}</code></td>"
        + "".join(f"<td class='num'>{_number(s.get(m))}</td>" for m in measures)
        + f"<td>{_badge('warn') + ' ' + escape(s['suspect']) if s.get('suspect') else ''}</td></tr>"
        for s in scores[:TOP_FEATURES]
    )
    model = leakage["figures"].get("model", {})
    ours = "; ".join(f"{FEATURE_MEASURES[k]} {v:.3f}" for k, v in model.items())
    return (
        f"<h2 style='margin-top:16px'>Each feature alone (out of sample, "
        f"{leakage['figures']['rows_scored']:,} rows)</h2>"
        + (f"<p class='muted'>The full model on validation rows: {ours}.</p>" if ours else "")
        + f"<table><tr><th>feature</th>{head}<th></th></tr>{rows}</table>"
    )


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _stages_section(report: TrainingReport) -> str:
    rows = "".join(
        f"<tr><td>{escape(s['stage'])}</td>"
        f"<td class='num'>{_shape(s['rows_in'], s['columns_in'])}</td>"
        f"<td class='num'>{_shape(s['rows_out'], s['columns_out'])}</td>"
        f"<td class='num'>{s['seconds']:.2f} s</td>"
        f"<td><ul>{''.join(f'<li>{escape(line)}</li>' for line in s['lines'])}</ul></td></tr>"
        for s in report.stages
    )
    return (
        "<section><h2>Data flow</h2><table><tr><th>stage</th><th>in (rows &times; cols)</th>"
        f"<th>out</th><th>time</th><th>what happened</th></tr>{rows}</table></section>"
    )


def _shape(rows: int | None, columns: int | None) -> str:
    """Rows x columns of a table, or a dash for a stage no table flows through."""
    if rows is None or columns is None:
        return "&mdash;"
    return f"{rows:,} &times; {columns}"


def _schema_section(report: TrainingReport) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(c['name'])}</code></td><td>{escape(c['kind'])}</td>"
        f"<td>{escape(c['dtype'])}</td><td class='num'>{c['missing']}</td>"
        f"<td class='num'>{c['distinct']}</td><td>{escape(c['note'])}</td></tr>"
        for c in report.schema
    )
    return (
        "<section><h2>Schema</h2><table><tr><th>column</th><th>kind</th><th>dtype</th>"
        f"<th>missing</th><th>distinct</th><th>note</th></tr>{rows}</table></section>"
    )


def _badge(status: str) -> str:
    return f'<span class="badge {status}">{status}</span>'


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
