"""The monitoring page: a self-contained HTML file (plots as PNG data URIs) of a
monitoring report's JSON form, one section per version and arm."""

from __future__ import annotations

from html import escape
from importlib.resources import files
from string import Template
from typing import Any

from servewell.reports import monitor_plots, plots


def monitor_html(report: dict[str, Any]) -> str:
    template = Template(files("servewell.reports").joinpath("report.html").read_text("utf-8"))
    start = report["start"] or "the newest rows"
    subtitle = (
        f"window <code>{escape(report['window'])}</code>: {escape(start)} to "
        f"{escape(report['end'])}"
    )
    sections = [_group(report["model"], group) for group in report["groups"]]
    if not sections:
        sections = ["<section><p>No predictions were logged in this window.</p></section>"]
    return template.substitute(
        title=escape(f"Monitoring: {report['model']}"), subtitle=subtitle, body="\n".join(sections)
    )


def _group(model: str, group: dict[str, Any]) -> str:
    arm = f" (arm {escape(group['arm'])})" if group["arm"] else ""
    head = f"<h2>{escape(model)}@{group['version']}{arm}</h2>"
    counts = (
        f"<p>{group['logged']:,} logged ({group['cached']:,} from the cache), "
        f"{group['labelled']:,} labelled: label coverage {group['label_coverage']:.1%}. "
        f"<span class='muted'>{escape(group['errors'])}.</span></p>"
    )
    return f"<section>{head}{counts}{_quality(group)}{_drift(group)}{_figures(group)}</section>"


def _quality(group: dict[str, Any]) -> str:
    figures = group["quality"]
    if figures is None:
        return f"<p><b>Quality:</b> {escape(group['quality_note'] or '')}</p>"
    if figures["task"] == "regression":
        cells = [(k, figures[k]) for k in ("mae", "rmse", "r2")]
    else:
        cells = [(k, figures[k]) for k in ("accuracy", "macro_f1", "roc_auc")]
    row = "".join(f"<td class='num'>{'-' if v is None else f'{v:.4f}'}</td>" for _, v in cells)
    head = "".join(f"<th>{escape(k)}</th>" for k, _ in cells)
    return (
        f"<h3>Quality ({figures['rows']:,} rows)</h3><table><tr>{head}</tr><tr>{row}</tr></table>"
    )


def _drift(group: dict[str, Any]) -> str:
    drift = group["drift"]
    if drift["note"]:
        return f"<p><b>Drift:</b> {escape(drift['note'])}</p>"
    rows = []
    for feature in [*drift["features"], *([drift["prediction"]] if drift["prediction"] else [])]:
        for test in feature["tests"]:
            badge = "fail" if test["drift"] else "pass"
            stat = "-" if test["statistic"] is None else f"{test['statistic']:.4f}"
            p = "" if test["p_value"] is None else f"{test['p_value']:.4g}"
            rows.append(
                f"<tr><td>{escape(feature['name'])}</td><td>{test['test']}</td>"
                f"<td class='num'>{stat}</td><td class='num'>{p}</td>"
                f"<td class='num'>{test['threshold']}</td><td><span class='badge {badge}'>"
                f"{'drift' if test['drift'] else 'ok'}</span></td></tr>"
            )
    skipped = "".join(
        f"<li>{escape(name)}: {escape(why)}</li>" for name, why in drift["not_judged"].items()
    )
    table = (
        "<table><tr><th>feature</th><th>test</th><th>statistic</th><th>p-value</th>"
        f"<th>threshold</th><th>verdict</th></tr>{''.join(rows)}</table>"
    )
    return f"<h3>Drift</h3>{table}" + (f"<p>Not judged:</p><ul>{skipped}</ul>" if skipped else "")


def _figures(group: dict[str, Any]) -> str:
    drawn = [
        draw(group)
        for draw in (
            monitor_plots.quality_plot,
            monitor_plots.drift_plot,
            monitor_plots.latency_plot,
            monitor_plots.prediction_plot,
        )
    ]
    images = "".join(
        f'<img alt="plot" src="{plots.to_png(figure)}">' for figure in drawn if figure is not None
    )
    return f"<div class='figures'>{images}</div>" if images else ""
