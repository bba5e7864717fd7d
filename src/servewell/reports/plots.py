"""The report's figures, drawn with matplotlib's object API (no pyplot global state).

Each function returns a :class:`~matplotlib.figure.Figure`; :func:`to_png` turns one
into a base64 PNG so the HTML page stays a single self-contained file.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from servewell.stats import ClassificationMetrics, Curve

BLUE, ORANGE, GREY = "#2563eb", "#ea580c", "#9ca3af"


def to_png(figure: Figure) -> str:
    """The figure as a base64 PNG data URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def confusion_plot(metrics: ClassificationMetrics) -> Figure:
    matrix = np.asarray(metrics.confusion)
    figure = Figure(figsize=(4.2, 3.6))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    names = [str(label) for label in metrics.labels]
    axes.set_xticks(range(len(names)), names)
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    limit = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > limit else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=color)
    axes.set_title("Confusion matrix (validation)")
    return figure


def curve_plot(
    curve: Curve,
    *,
    title: str,
    x_label: str,
    y_label: str,
    area: float,
    diagonal: bool,
    baseline: float | None = None,
) -> Figure:
    """A ROC curve (``diagonal``: chance is the diagonal) or a PR curve (chance is the
    horizontal line at the positive class's prevalence, ``baseline``)."""
    figure = Figure(figsize=(4.2, 3.6))
    axes = figure.add_subplot()
    axes.plot(
        curve.x,
        curve.y,
        color=BLUE,
        label=f"area {area:.3f}",
        drawstyle="steps-post" if not diagonal else "default",
    )
    if diagonal:
        axes.plot([0, 1], [0, 1], color=GREY, linestyle="--", label="chance")
    if baseline is not None:
        axes.axhline(
            baseline, color=GREY, linestyle="--", label=f"chance (prevalence {baseline:.3f})"
        )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    axes.legend(loc="lower right" if diagonal else "lower left")
    return figure


def reliability_plot(curve: Curve, *, brier: float | None, binary: bool) -> Figure:
    """Mean predicted probability against observed frequency per bin: a calibrated model
    stays on the diagonal."""
    figure = Figure(figsize=(4.2, 3.6))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color=GREY, linestyle="--", label="perfectly calibrated")
    label = f"model (Brier {brier:.3f})" if brier is not None else "model"
    axes.plot(curve.x, curve.y, color=BLUE, marker="o", label=label)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("predicted probability" if binary else "top class's probability")
    axes.set_ylabel("share positive" if binary else "share right")
    axes.set_title("Calibration (validation)")
    axes.legend(loc="upper left", fontsize="small")
    return figure


def training_plot(training: dict[str, Any]) -> Figure | None:
    """Loss and scores per epoch, from a training trace's JSON form (``Trace.to_dict``)."""
    points, metric = training["epochs"], training["metric"]
    if not points:
        return None
    epochs = [e["epoch"] for e in points]
    figure = Figure(figsize=(8.4, 3.4))
    loss_axes, score_axes = figure.subplots(1, 2)
    losses = [e["loss"] for e in points]
    if all(loss is not None for loss in losses):
        loss_axes.plot(epochs, losses, color=ORANGE)
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("training loss")
    loss_axes.set_title("Loss")
    score_axes.plot(epochs, [e["train_score"] for e in points], color=GREY, label="training")
    score_axes.plot(epochs, [e["validation_score"] for e in points], color=BLUE, label="validation")
    score_axes.set_xlabel("epoch")
    score_axes.set_ylabel(metric)
    score_axes.set_title(metric.capitalize() if metric != "r2" else "R²")
    score_axes.legend(loc="lower right")
    for axes in (loss_axes, score_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    return figure


def per_class_plot(metrics: ClassificationMetrics) -> Figure:
    names = list(metrics.per_class)
    figure = Figure(figsize=(max(4.2, 1.2 * len(names) + 2), 3.4))
    axes = figure.add_subplot()
    width = 0.26
    positions = np.arange(len(names))
    for offset, (measure, color) in enumerate(
        (("precision", GREY), ("recall", BLUE), ("f1", ORANGE))
    ):
        values = [getattr(metrics.per_class[n], measure) for n in names]
        axes.bar(positions + (offset - 1) * width, values, width, label=measure, color=color)
    axes.set_xticks(positions, names)
    axes.set_ylim(0, 1.18)
    axes.set_xlabel("class")
    axes.set_title("Per-class metrics (validation)")
    axes.legend(loc="upper center", ncol=3, fontsize="small", frameon=False)
    return figure


def distributions_plot(profile: dict[str, Any], columns: Sequence[str]) -> Figure | None:
    """Small multiples: a histogram per numeric input, a bar chart per categorical one."""
    shown = [
        c
        for c in columns
        if profile["features"].get(c, {}).get("kind") in ("numeric", "categorical")
    ][:16]
    if not shown:
        return None
    across = min(4, len(shown))
    down = -(-len(shown) // across)
    figure = Figure(figsize=(2.6 * across, 2.1 * down))
    grid = figure.subplots(down, across, squeeze=False)
    for axes, name in zip(grid.flat, shown, strict=False):
        column = profile["features"][name]
        if column["kind"] == "numeric":
            _histogram(axes, column)
        else:
            _bars(axes, column)
        missing = f" ({column['missing']:,} missing)" if column.get("missing") else ""
        axes.set_title(name[:28] + missing, fontsize=9)
        axes.tick_params(axis="x", labelsize=7)
    for axes in list(grid.flat)[len(shown) :]:
        axes.set_visible(False)
    figure.tight_layout()
    return figure


def _histogram(axes: Any, column: dict[str, Any]) -> None:
    if "histogram" not in column:
        return
    edges = column["histogram"]["edges"]
    axes.stairs(column["histogram"]["counts"], edges, fill=True, color=BLUE, alpha=0.75)
    # The shape is what a reader compares, not the counts; the tick labels were most of
    # the time the demo took to draw this figure (3x less without them).
    axes.tick_params(axis="y", left=False, labelleft=False)
    axes.xaxis.set_major_locator(MaxNLocator(4, integer=bool(column.get("integer"))))


def _bars(axes: Any, column: dict[str, Any]) -> None:
    """The most common values' shares of all rows, missing values as a bar of their own."""
    count = column["count"] or 1
    present = (count - column["missing"]) / count
    items = [(key, share * present) for key, share in column["frequencies"].items()][:8]
    colours = [BLUE] * len(items)
    if column["missing"]:
        items.append(("(missing)", column["missing"] / count))
        colours.append(GREY)
    axes.barh([k[:14] for k, _ in items][::-1], [v for _, v in items][::-1], color=colours[::-1])
    axes.tick_params(axis="y", labelsize=7)


def regression_plot(truth: np.ndarray[Any, Any], predicted: np.ndarray[Any, Any]) -> Figure:
    figure = Figure(figsize=(8.4, 3.4))
    scatter, residuals = figure.subplots(1, 2)
    scatter.scatter(truth, predicted, s=6, alpha=0.5, color=BLUE)
    low, high = float(np.min(truth)), float(np.max(truth))
    scatter.plot([low, high], [low, high], color=GREY, linestyle="--")
    scatter.set_xlabel("actual")
    scatter.set_ylabel("predicted")
    scatter.set_title("Predicted vs actual (validation)")
    residuals.hist(np.asarray(predicted) - np.asarray(truth), bins=30, color=ORANGE)
    residuals.set_xlabel("prediction error")
    residuals.set_title("Residuals")
    figure.tight_layout()
    return figure
