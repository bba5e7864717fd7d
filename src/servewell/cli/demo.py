"""``servewell demo``: train the reference model through the pipeline, gate it, register it,
create an API key for it, print a ready-to-paste curl line, and (with ``--serve``) serve it.

Running it again reuses what it made: the version registered from the same data and
settings (training is seeded, so it would make the same model again), and the demo's key.
Only a key's hash is in the registry, so the demo keeps its own key's token in
``SERVEWELL_HOME/demo-key`` (mode 0600): a second run prints the same working curl line
instead of piling up keys. That file is no weaker than the folder it sits in, which
holds the registry database and the model files; the key only predicts on the demo model.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from servewell.cli.output import console, open_services, who_am_i
from servewell.cli.train import RichProgress, key_table
from servewell.core.apikey import parse_key, secret_matches
from servewell.core.ref import ModelRef
from servewell.errors import GateFailed, NotFound
from servewell.training.demo import DEMO_MODEL, MIN_ACCURACY, demo_config, demo_dataset

if TYPE_CHECKING:
    from servewell.bootstrap import Services
    from servewell.registry import ModelVersion
    from servewell.registry.keys import ApiKeyStore
    from servewell.training.config import PipelineConfig
    from servewell.training.data import Dataset

#: The demo key's token, under SERVEWELL_HOME.
DEMO_KEY_FILE = "demo-key"


def demo(
    serve: bool = typer.Option(False, "--serve", help="Serve the model when it is registered."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to serve on (with --serve)."),
) -> None:
    """Train the breast-cancer demo model and register it as breast-cancer@production."""
    dataset, config = demo_dataset(), demo_config()
    with open_services() as services:
        version = _previous_demo(services, dataset, config)
        if version is None:
            version = _train_and_register(services, dataset, config)
        else:
            console.print(
                f"[bold]{version.name}@{version.version}[/] was registered from the same data "
                "and settings by an earlier run: reusing it"
            )
        token = _demo_token(services, version)
    served = "ONNX conversion" if version.has_artifact("onnx") else version.format
    console.print(
        f"registered [bold]{version.name}@{version.version}[/] with alias "
        f"[cyan]production[/] (serves via {served}); see it with: "
        f"[bold]servewell models show {version.name}[/]"
    )
    row = dataset.frame.drop(columns="target").iloc[0].round(4).tolist()
    console.print(
        f"its API key (also in {services.settings.home / DEMO_KEY_FILE}); "
        "with the server running, try:"
    )
    console.print(curl_line(port, token, row), highlight=False, soft_wrap=True, markup=False)
    if serve:
        from servewell.cli.serve import serve as run_server

        run_server(
            host=None,
            port=port,
            workers=None,
            models=DEMO_MODEL,
            no_auth=False,
            i_know=False,
            allow_empty=False,
        )


def _train_and_register(
    services: Services, dataset: Dataset, config: PipelineConfig
) -> ModelVersion:
    from servewell.training.register import register_result
    from servewell.training.run import train_pipeline

    progress = RichProgress(console)
    result = train_pipeline(dataset, config, progress)
    accuracy = result.metrics.headline()["accuracy"]
    console.print(key_table(result))
    console.print(
        f"test accuracy on {len(result.validation_truth)} held-out rows: "
        f"[bold green]{accuracy:.4f}[/] (required ≥ {MIN_ACCURACY})"
    )
    if not result.passed:
        raise GateFailed(result.failures)
    return register_result(services, result, progress, by=who_am_i())


def _previous_demo(
    services: Services, dataset: Dataset, config: PipelineConfig
) -> ModelVersion | None:
    """The production version, when an earlier demo trained it on the same data and
    settings (the fingerprint and the pipeline recorded with it)."""
    try:
        version = services.registry.resolve(ModelRef(DEMO_MODEL, alias="production"))
    except NotFound:
        return None
    same_data = version.params.get("data", {}).get("sha256") == dataset.fingerprint.sha256
    same_config = version.params.get("pipeline") == config.model_dump(mode="json", by_alias=True)
    return version if same_data and same_config else None


def _demo_token(services: Services, version: ModelVersion) -> str:
    """The saved demo key while it still works for this model; else a new one, saved."""
    from servewell.registry.keys import ApiKeyStore

    path = services.settings.home / DEMO_KEY_FILE
    store = ApiKeyStore(services.registry)
    saved = path.read_text().strip() if path.is_file() else ""
    if _is_active_for(store, saved, version.name):
        return saved
    taken = {key.name for key in store.list()}
    name = base = f"demo-{version.name}-v{version.version}"
    suffix = 1
    while name in taken:  # names stay taken after revocation
        suffix += 1
        name = f"{base}-{suffix}"
    _, token = store.create(name, scopes=("predict",), models=(version.name,))
    _save_secret(path, token)
    return token


def _is_active_for(store: ApiKeyStore, token: str, model: str) -> bool:
    parsed = parse_key(token)
    if parsed is None:
        return False
    key_id, secret = parsed
    return any(
        key.key_id == key_id
        and secret_matches(secret, key.secret_hash)
        and (key.models is None or model in key.models)
        for key in store.list(include_revoked=False)
    )


def _save_secret(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as writer:
        writer.write(token + "\n")
    os.chmod(path, 0o600)  # an older file may have had looser permissions


def curl_line(port: int, token: str, row: list[float]) -> str:
    body = json.dumps({"instances": [row]})
    return (
        f"curl -s -X POST http://127.0.0.1:{port}/v1/models/{DEMO_MODEL}:predict "
        f"-H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
        f"-d {shlex.quote(body)}"
    )
