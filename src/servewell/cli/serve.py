"""``servewell serve``: every registered model as an HTTP endpoint, on uvicorn."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import signal
import tempfile
from pathlib import Path
from types import FrameType

import typer

from servewell.cli.output import reporting_errors
from servewell.core.ref import ModelRef
from servewell.errors import InvalidInput
from servewell.settings import load_settings

APP_FACTORY = "servewell.http.app:create_app_from_environment"
#: uvicorn's httptools protocol with response-cache hits answered before the ASGI app.
HTTP_PROTOCOL = "servewell.http.protocol:ServewellHttpProtocol"


def serve(
    host: str | None = typer.Option(None, help="Interface to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(
        None, min=0, max=65535, help="TCP port to listen on (default 8000)."
    ),
    workers: int | None = typer.Option(None, min=1, help="Server processes sharing the port."),
    models: str | None = typer.Option(
        None,
        help="Models to serve, comma-separated: name, name@2, name@staging "
        "(default: every model's production alias, else its latest version).",
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Serve without API keys (local development only)."
    ),
    i_know: bool = typer.Option(
        False, "--i-know", help="With --no-auth: allow it on a non-loopback host too."
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
        if no_auth:
            _check_no_auth(host or settings.host, i_know)
            os.environ["SERVEWELL_AUTH__ENABLED"] = "false"  # read by every worker
        if refs is not None:
            # Each worker process builds its settings from the environment.
            os.environ["SERVEWELL_SERVER__MODELS"] = json.dumps(refs)
        if workers > 1:
            os.environ["SERVEWELL_SERVER__LOAD_BEFORE_SERVING"] = "true"
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="servewell-metrics-")
        _clear_metric_files()
        configure_logging()
        if no_auth:
            _warn_no_auth(host or settings.host)
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
            http=HTTP_PROTOCOL,
            lifespan="on",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=int(settings.drain_timeout_s),
            timeout_worker_healthcheck=settings.worker_start_timeout_s,
        )


def _check_no_auth(host: str, i_know: bool) -> None:
    """Without keys anyone who reaches the port may call every model: fine on loopback,
    refused elsewhere unless the user says twice that they mean it."""
    if not is_loopback(host) and not i_know:
        raise InvalidInput(
            f"--no-auth on {host} would open every model to anyone who can reach it; "
            "add --i-know if that is really what you want"
        )


def _warn_no_auth(host: str) -> None:
    # A log line (JSON, like every line the server writes), not a Rich one.
    logging.getLogger("servewell.serve").warning(
        "serving on %s WITHOUT authentication (--no-auth): anyone who reaches it may call "
        "every model",
        host,
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _exit_drained(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _clear_metric_files() -> None:
    """Multiprocess metrics start from zero: files left by an earlier run would add up."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        for path in Path(folder).glob("*.db"):
            path.unlink()
