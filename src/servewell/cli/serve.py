"""``servewell serve``: every registered model as an HTTP endpoint, on uvicorn."""

from __future__ import annotations

import json
import os
import signal
import tempfile
from pathlib import Path
from types import FrameType

import typer

from servewell.cli.output import reporting_errors
from servewell.core.ref import ModelRef
from servewell.settings import load_settings

APP_FACTORY = "servewell.http.app:create_app_from_environment"


def serve(
    host: str | None = typer.Option(None, help="Interface to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="TCP port to listen on (default 8000)."),
    workers: int | None = typer.Option(None, min=1, help="Server processes sharing the port."),
    models: str | None = typer.Option(
        None,
        help="Models to serve, comma-separated: name, name@2, name@staging "
        "(default: every model's production alias, else its latest version).",
    ),
) -> None:
    """Serve models over HTTP: Open Inference Protocol (V2), REST, health and metrics."""
    import uvicorn

    from servewell.observability import configure_logging

    with reporting_errors():
        settings = load_settings().server
        refs = [text.strip() for text in models.split(",") if text.strip()] if models else None
        for text in refs or settings.models:
            ModelRef.parse(text)
        workers = workers or settings.workers
        if refs is not None:
            # Each worker process builds its settings from the environment.
            os.environ["SERVEWELL_SERVER__MODELS"] = json.dumps(refs)
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="servewell-metrics-")
        _clear_metric_files()
        configure_logging()
        # uvicorn drains on SIGTERM, then raises the signal again on its way out; a
        # drained server has done its job, so that second SIGTERM ends it with status 0.
        signal.signal(signal.SIGTERM, _exit_drained)
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host or settings.host,
            port=port if port is not None else settings.port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=int(settings.drain_timeout_s),
        )


def _exit_drained(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _clear_metric_files() -> None:
    """Multiprocess metrics start from zero: files left by an earlier run would add up."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        for path in Path(folder).glob("*.db"):
            path.unlink()
