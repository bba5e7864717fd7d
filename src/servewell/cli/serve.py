"""``servewell serve``: every registered model as an HTTP endpoint, on uvicorn."""

from __future__ import annotations

import json
import logging
import os
import signal
import tempfile
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer

from servewell.cli.output import reporting_errors
from servewell.cli.preflight import check_auth_off, check_models, check_port_free
from servewell.core.ref import ModelRef
from servewell.serving.startup import reporting_startup_failure

if TYPE_CHECKING:
    from servewell.settings import ServerSettings

APP_FACTORY = "servewell.http.app:create_app_from_environment"
#: uvicorn's httptools protocol with response-cache hits answered before the ASGI app.
HTTP_PROTOCOL = "servewell.http.protocol:ServewellHttpProtocol"
#: Runs uvicorn's server with servewell's shutdown sequence, in one process or several
#: (named, like the app and the protocol: the CLI does not import the HTTP layer).
RUN_SERVER = "servewell.http.server:run"


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
        False,
        "--i-know",
        help="With auth off (--no-auth or auth.enabled false): allow a non-loopback host too.",
    ),
    allow_empty: bool = typer.Option(
        False, "--allow-empty", help="Serve (and report ready) with no model registered."
    ),
) -> None:
    """Serve models over HTTP: Open Inference Protocol (V2), REST, health and metrics."""
    from servewell.observability import configure_logging
    from servewell.settings import load_settings

    with reporting_errors():
        all_settings = load_settings()
        settings = all_settings.server
        refs = [text.strip() for text in models.split(",") if text.strip()] if models else None
        for text in refs or settings.models:
            ModelRef.parse(text)
        host = host or settings.host
        port = port if port is not None else settings.port
        auth_off = _auth_off_by(no_auth, all_settings.auth.enabled)
        if auth_off:
            check_auth_off(host, i_know, auth_off)
        check_models(all_settings, refs or settings.models, allow_empty)
        check_port_free(host, port)
        workers = workers or settings.workers
        _export_to_workers(no_auth, refs, workers)
        configure_logging()
        if auth_off:
            _warn_auth_off(host, auth_off)
        with reporting_startup_failure():
            _run_uvicorn(host, port, workers, settings)


def _run_uvicorn(host: str, port: int, workers: int, settings: ServerSettings) -> None:
    import uvicorn
    from uvicorn.importer import import_from_string

    # uvicorn drains on SIGTERM, then raises the signal again on its way out; a drained
    # server has done its job, so that second SIGTERM ends it with status 0.
    signal.signal(signal.SIGTERM, _exit_drained)
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=HTTP_PROTOCOL,
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_worker_healthcheck=settings.worker_start_timeout_s,
        **edge_options(settings),
    )
    import_from_string(RUN_SERVER)(config)


def edge_options(settings: ServerSettings) -> dict[str, Any]:
    """What uvicorn is told about the edge. No WebSocket: servewell does not speak it, so
    a handshake is a plain HTTP request, which the app refuses (400) after the guard and
    logs. Proxy headers only from ``server.forwarded_allow_ips`` (uvicorn would believe
    127.0.0.1 by default, so anyone on the host could pick their address)."""
    trusted = settings.forwarded_allow_ips
    return {"ws": "none", "proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}


def _export_to_workers(no_auth: bool, refs: list[str] | None, workers: int) -> None:
    """What the flags say, in the environment: each worker process builds its settings
    from it (and, with several workers, shares one metrics folder)."""
    if no_auth:
        os.environ["SERVEWELL_AUTH__ENABLED"] = "false"
    if refs is not None:
        os.environ["SERVEWELL_SERVER__MODELS"] = json.dumps(refs)
    if workers > 1:
        os.environ["SERVEWELL_SERVER__LOAD_BEFORE_SERVING"] = "true"
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="servewell-metrics-")
    _clear_metric_files()


def _auth_off_by(no_auth: bool, enabled: bool) -> str:
    """What turned API keys off, for the refusal and the warning ('' while they are on)."""
    if no_auth:
        return "--no-auth"
    return "" if enabled else "auth.enabled false (from the settings)"


def _warn_auth_off(host: str, source: str) -> None:
    # A log line (JSON, like every line the server writes), not a Rich one.
    logging.getLogger("servewell.serve").warning(
        "serving on %s WITHOUT authentication (%s): anyone who reaches it may call every model",
        host,
        source,
    )


def _exit_drained(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _clear_metric_files() -> None:
    """Multiprocess metrics start from zero: files left by an earlier run would add up."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        for path in Path(folder).glob("*.db"):
            path.unlink()
