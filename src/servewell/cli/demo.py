"""``servewell demo``: train the reference model through the pipeline, gate it, register it."""

from __future__ import annotations

from servewell.cli.output import console, open_services, reporting_errors
from servewell.cli.train import RichProgress, key_table
from servewell.errors import GateFailed
from servewell.pipeline.demo import MIN_ACCURACY, demo_config, demo_dataset
from servewell.pipeline.run import register_result, train_pipeline


def demo() -> None:
    """Train the breast-cancer demo model and register it as breast-cancer@production."""
    progress = RichProgress(console)
    with reporting_errors():
        result = train_pipeline(demo_dataset(), demo_config(), progress)
        accuracy = result.metrics.headline()["accuracy"]
        console.print(key_table(result))
        console.print(
            f"test accuracy on {len(result.validation_truth)} held-out rows: "
            f"[bold green]{accuracy:.4f}[/] (required ≥ {MIN_ACCURACY})"
        )
        if not result.passed:
            raise GateFailed(result.failures)
    with open_services() as services:
        register_result(services, result, progress)
    version = result.version
    assert version is not None
    served = "ONNX conversion" if version.has_artifact("onnx") else version.format
    console.print(
        f"registered [bold]{version.name}@{version.version}[/] with alias "
        f"[cyan]production[/] (serves via {served}); see it with: "
        f"[bold]servewell models show {version.name}[/]"
    )
