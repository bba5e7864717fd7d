import json

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
