"""``servewell demo``: train the reference model through the pipeline, gate it, register it,
create an API key for it, print a ready-to-paste curl line, and (with ``--serve``) serve it."""

from __future__ import annotations

import json
import shlex

import typer

from servewell.cli.output import console, open_services, reporting_errors
from servewell.cli.train import RichProgress, key_table
from servewell.errors import GateFailed
from servewell.registry.keys import ApiKeyStore
from servewell.training.demo import DEMO_MODEL, MIN_ACCURACY, demo_config, demo_dataset
from servewell.training.register import register_result
from servewell.training.run import train_pipeline


def demo(
    serve: bool = typer.Option(False, "--serve", help="Serve the model when it is registered."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to serve on (with --serve)."),
) -> None:
    """Train the breast-cancer demo model and register it as breast-cancer@production."""
    progress = RichProgress(console)
    dataset = demo_dataset()
    with reporting_errors():
        result = train_pipeline(dataset, demo_config(), progress)
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
        _, token = ApiKeyStore(services.registry).create(
            f"demo-{version.name}-v{version.version}", scopes=("predict",), models=(version.name,)
        )
    served = "ONNX conversion" if version.has_artifact("onnx") else version.format
    console.print(
        f"registered [bold]{version.name}@{version.version}[/] with alias "
        f"[cyan]production[/] (serves via {served}); see it with: "
        f"[bold]servewell models show {version.name}[/]"
    )
    row = dataset.frame.drop(columns="target").iloc[0].round(4).tolist()
    console.print("created an API key for it (shown once); with the server running, try:")
    console.print(curl_line(port, token, row), highlight=False, soft_wrap=True, markup=False)
    if serve:
        from servewell.cli.serve import serve as run_server

        run_server(
            host=None, port=port, workers=None, models=DEMO_MODEL, no_auth=False, i_know=False
        )


def curl_line(port: int, token: str, row: list[float]) -> str:
    body = json.dumps({"instances": [row]})
    return (
        f"curl -s -X POST http://127.0.0.1:{port}/v1/models/{DEMO_MODEL}:predict "
        f"-H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
        f"-d {shlex.quote(body)}"
    )
