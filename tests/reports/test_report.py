import json

import numpy as np
import pytest

from servewell.reports.card import model_card
from servewell.reports.report import write_report
from servewell.training.data import dataset_from_frame
from servewell.training.run import train_pipeline


def test_report_files_hold_every_figure(frame, tmp_path, make_config) -> None:
    result = train_pipeline(dataset_from_frame(frame, "t"), make_config(split={"folds": 3}))
    json_path, html_path = write_report(result.report(), tmp_path / "report")
    data = json.loads(json_path.read_text())
    assert data["metrics"]["accuracy"] == result.metrics.accuracy
    assert len(data["training"]["epochs"]) == len(result.trace.epochs) > 0
    assert [s["stage"] for s in data["stages"]] == [
        "load",
        "clean",
        "features",
        "split",
        "train",
        "validate",
        "checks",
        "gate",
    ]
    assert len(data["cross_validation"]["scores"]) == 3
    html = html_path.read_text()
    assert html.count("data:image/png;base64,") >= 6  # confusion, ROC, PR, per class, ...
    assert "<script" not in html
    assert "://" not in html  # self-contained: nothing fetched from elsewhere
    card = model_card(result.report())
    assert card.startswith("# Model card: clicks")
    assert "## Checks" in card


def _axes_titled(figures, title: str):
    return next(a for f in figures for a in f.axes if a.get_title() == title)


def test_pr_curve_shows_the_prevalence_and_calibration_is_plotted(frame, make_config) -> None:
    from servewell.reports.report import validation_figures

    result = train_pipeline(dataset_from_frame(frame, "t"), make_config())
    figures = validation_figures(result.report())
    pr = _axes_titled(figures, "Precision-recall curve")
    chance = [line for line in pr.get_lines() if line.get_label().startswith("chance")]
    prevalence = float(np.mean(result.validation_truth == 1))
    assert [tuple(line.get_ydata()) for line in chance] == [(prevalence, prevalence)]
    assert f"prevalence {prevalence:.3f}" in chance[0].get_label()
    calibration = _axes_titled(figures, "Calibration (validation)")
    model = next(line for line in calibration.get_lines() if "Brier" in line.get_label())
    assert tuple(model.get_xdata()) == result.metrics.calibration_curve.x


def test_distributions_show_missing_values_and_whole_number_ticks(tmp_path) -> None:
    import palmerpenguins

    from servewell.reports.report import distributions_figure
    from servewell.training.config import parse_config

    config = parse_config(
        {
            "target": "species",
            "estimator": {"kind": "logistic"},
            "cleaning": {"missing": "impute"},
            "checks": {"latency_rows": 10},
        }
    )
    result = train_pipeline(dataset_from_frame(palmerpenguins.load_penguins(), "p"), config)
    figure = distributions_figure(result.report())
    sex = next(a for a in figure.axes if a.get_title().startswith("sex"))
    assert "missing)" in sex.get_title()
    bars = {label.get_text(): patch.get_width()
            for label, patch in zip(sex.get_yticklabels(), sex.patches, strict=True)}  # fmt: skip
    profile = result.profile["features"]["sex"]
    assert bars["(missing)"] == pytest.approx(profile["missing"] / profile["count"])
    assert sum(bars.values()) == pytest.approx(1.0)
    year = next(a for a in figure.axes if a.get_title().startswith("year"))
    ticks = [t for t in year.get_xticks() if year.get_xlim()[0] <= t <= year.get_xlim()[1]]
    assert ticks
    assert all(float(t).is_integer() for t in ticks)


def test_multiclass_report_has_roc_auc_calibration_and_the_features_alone(tmp_path) -> None:
    import palmerpenguins

    from servewell.reports.report import report_html, validation_figures
    from servewell.training.config import parse_config

    config = parse_config(
        {"target": "species", "estimator": {"kind": "logistic"}, "checks": {"latency_rows": 10}}
    )
    report = train_pipeline(
        dataset_from_frame(palmerpenguins.load_penguins(), "p"), config
    ).report()
    assert {"roc_auc", "roc_auc_weighted", "brier_score"} <= set(report.metrics.headline())
    titles = {a.get_title() for f in validation_figures(report) for a in f.axes}
    assert "Calibration (validation)" in titles
    html = report_html(report)
    assert "Each feature alone (out of sample" in html
    assert "<code>flipper_length_mm</code>" in html
    card = model_card(report)
    assert "Strongest features alone, out of sample:" in card
    assert "- `" in card.split("Strongest features alone, out of sample:")[1]


def test_the_data_flow_table_shows_real_counts_or_a_dash(frame, make_config) -> None:
    result = train_pipeline(dataset_from_frame(frame, "t"), make_config())
    stages = {s["stage"]: s for s in result.report().stages}
    assert stages["checks"]["rows_in"] == len(frame)
    assert stages["checks"]["columns_in"] == 5
    assert stages["gate"]["rows_in"] is None
    from servewell.reports.report import report_html

    html = report_html(result.report())
    row = html.split("<tr><td>checks</td>")[1].split("</tr>")[0]
    assert f"{len(frame):,} &times; 5" in row
    assert "0 &times; 0" not in html
    gate = html.split("<tr><td>gate</td>")[1].split("</tr>")[0]
    assert "&mdash;" in gate
