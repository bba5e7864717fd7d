"""``servewell demo``: train the reference model, check it, register it."""

from __future__ import annotations

from servewell.cli.output import console, open_services
from servewell.pipeline.demo import MIN_ACCURACY, train_demo


def demo() -> None:
    """Train the breast-cancer demo model and register it as breast-cancer@production."""
    with open_services() as services:
        with console.status("training StandardScaler + MLP(64, 32) on breast-cancer data…"):
            result = train_demo(services)
        version = result.version
        console.print(
            f"trained on {result.train_rows} rows; test accuracy on {result.test_rows} held-out "
            f"rows: [bold green]{result.accuracy:.4f}[/] (required ≥ {MIN_ACCURACY})"
        )
        served = "ONNX conversion" if version.has_artifact("onnx") else version.format
        console.print(
            f"registered [bold]{version.name}@{version.version}[/] with alias "
            f"[cyan]production[/] (serves via {served}); see it with: "
            f"[bold]servewell models show {version.name}[/]"
        )
