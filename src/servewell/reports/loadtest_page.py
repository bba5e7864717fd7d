"""The load-test page: a self-contained HTML file (plots as PNG data URIs, no external
URL) of a load test's JSON document: the verdict, the per-step table (open-loop steps
with their p50 from the actual sends, how late the client sent, and a warning when it
fell behind), latency over time, the latency histogram and throughput per step."""

from __future__ import annotations

from html import escape
from importlib.resources import files
from string import Template
from typing import Any

from matplotlib.figure import Figure

from servewell.reports.plots import BLUE, GREY, ORANGE, to_png

_QUANTILES = ("p50", "p90", "p99", "p99.9", "max")


def loadtest_html(document: dict[str, Any]) -> str:
    template = Template(files("servewell.reports").joinpath("report.html").read_text("utf-8"))
    version = "" if document["version"] is None else f"@{document['version']}"
    subtitle = (
        f"{escape(document['url'])}, protocol <code>{escape(document['protocol'])}</code>, "
        f"started {escape(document['started_at'])}"
    )
    figures = [latency_over_time(document), histogram_plot(document), throughput_plot(document)]
    images = "".join(f"<img src='{to_png(figure)}' alt=''>" for figure in figures)
    body = (
        _verdict(document)
        + _steps_table(document)
        + f"<section><h2>Plots</h2><div class='figures'>{images}</div></section>"
    )
    return template.substitute(
        title=escape(f"Load test: {document['model']}{version}"), subtitle=subtitle, body=body
    )


def _shown(check: dict[str, Any]) -> str:
    """A check's value in its objective's unit (a result recorded before checks had
    ``shown``: the bare value)."""
    return str(check.get("shown") or f"{check['value']:.4g}")


def _verdict(document: dict[str, Any]) -> str:
    badge, word = ("pass", "PASS") if document["passed"] else ("fail", "FAIL")
    rows = "".join(
        f"<tr><td>{escape(c['step'])}</td><td>{escape(c['objective'])}</td>"
        f"<td class='num'>{escape(_shown(c))}</td><td><span class='badge "
        f"{'pass' if c['passed'] else 'fail'}'>{'ok' if c['passed'] else 'failed'}</span></td></tr>"
        for c in document["checks"]
    )
    slo = escape(document["slo"] or "none")
    table = (
        f"<table><tr><th>step</th><th>objective</th><th>value</th><th></th></tr>{rows}</table>"
        if rows
        else ""
    )
    return (
        f"<section><h2>Verdict</h2><p class='verdict'><span class='badge {badge}'>{word}</span>"
        f" SLO <code>{slo}</code>, {document['sent']:,} requests sent</p>{table}</section>"
    )


def _steps_table(document: dict[str, Any]) -> str:
    head = "".join(f"<th>{name} ms</th>" for name in _QUANTILES)
    rows = []
    for step in document["steps"]:
        cells = "".join(f"<td class='num'>{step['latency_ms'][q]:.2f}</td>" for q in _QUANTILES)
        errors = ", ".join(f"{s}: {n}" for s, n in step["errors"].items()) or "none"
        rows.append(
            f"<tr><td>{escape(step['label'])}</td><td class='num'>{step['requests']:,}</td>"
            f"<td class='num'>{step['throughput_rps']:.1f}</td>{cells}{_sent_cells(step)}"
            f"<td>{escape(errors)}</td></tr>"
        )
    return (
        "<section><h2>Steps</h2><table><tr><th>step</th><th>requests</th><th>req/s</th>"
        f"{head}<th>p50 from send ms</th><th>sent late p50/p99 ms</th><th>errors by status</th>"
        f"</tr>{''.join(rows)}</table>{_late_warnings(document)}</section>"
    )


def _sent_cells(step: dict[str, Any]) -> str:
    """Open loop: the p50 from the actual sends and how late they were; closed: none."""
    late, from_send = step.get("sent_late_ms"), step.get("latency_from_send_ms")
    if late is None or from_send is None:
        return "<td class='num muted'>-</td><td class='num muted'>-</td>"
    return (
        f"<td class='num'>{from_send['p50']:.2f}</td>"
        f"<td class='num'>{late['p50']:.2f}/{late['p99']:.2f}</td>"
    )


def _late_warnings(document: dict[str, Any]) -> str:
    late = [step["label"] for step in document["steps"] if step.get("client_fell_behind")]
    if not late:
        return ""
    return (
        f"<p><span class='badge warn'>warning</span> the load generator itself was late in "
        f"{escape(', '.join(late))}: its latencies include that wait, so the server may be "
        "faster than shown (a lower rate, or the client on another machine)</p>"
    )


def latency_over_time(document: dict[str, Any]) -> Figure:
    """p50 and p99 of each second, the steps one after another."""
    figure = Figure(figsize=(7, 3.2))
    axes = figure.subplots()
    offset = 0.0
    for i, step in enumerate(document["steps"]):
        points = step["timeline"]
        times = [offset + p["t_s"] for p in points]
        axes.plot(times, [p["p50_ms"] for p in points], color=BLUE, label="p50" if i == 0 else None)
        axes.plot(
            times, [p["p99_ms"] for p in points], color=ORANGE, label="p99" if i == 0 else None
        )
        offset = times[-1] if times else offset
        axes.axvline(offset, color=GREY, linewidth=0.8, linestyle=":")
    return _labelled(figure, axes, "Latency over time (per second)", "seconds", "ms")


def histogram_plot(document: dict[str, Any]) -> Figure:
    """Each step's latency distribution (share of requests per 1 % bucket), log scale."""
    figure = Figure(figsize=(7, 3.2))
    axes = figure.subplots()
    for step in document["steps"]:
        counts = step["histogram"]["counts"]
        total = sum(counts) or 1
        axes.step(step["histogram"]["upper_ms"], [c / total for c in counts], label=step["label"])
    axes.set_xscale("log")
    return _labelled(figure, axes, "Latency histogram", "ms", "share of requests")


def throughput_plot(document: dict[str, Any]) -> Figure:
    """Requests per second each step sustained."""
    figure = Figure(figsize=(5, 3.2))
    axes = figure.subplots()
    labels = [step["label"] for step in document["steps"]]
    axes.bar(labels, [step["throughput_rps"] for step in document["steps"]], color=BLUE)
    axes.set_title("Throughput per step")
    axes.set_ylabel("requests/s")
    return figure


def _labelled(figure: Figure, axes: Any, title: str, x_label: str, y_label: str) -> Figure:
    axes.set_title(title)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.legend(loc="best")
    return figure
