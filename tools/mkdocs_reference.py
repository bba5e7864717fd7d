"""MkDocs hook: the CLI and HTTP reference pages, generated at build time from the code
itself (the Typer app's commands and the server's OpenAPI schema), never committed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

if TYPE_CHECKING:
    from servewell.http.running import RunningServer

CLI_PAGE = "reference/cli.md"
HTTP_PAGE = "reference/http.md"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, CLI_PAGE, content=cli_reference()))
    files.append(File.generated(config, HTTP_PAGE, content=http_reference()))
    return files


# --- the command line --------------------------------------------------------------------


def cli_reference() -> str:
    import typer

    from servewell.cli.app import app

    root = typer.main.get_command(app)
    lines = ["# Command-line reference", "", "Generated from the Typer app at build time.", ""]
    _command(lines, root, "servewell")
    return "\n".join(lines) + "\n"


def _command(lines: list[str], command: Any, path: str) -> None:
    subcommands = getattr(command, "commands", {})
    depth = min(path.count(" ") + 2, 4)
    lines += [f"{'#' * depth} `{path}`", "", _plain(command.help or ""), ""]
    params = [p for p in command.params if p.name != "help"]
    if params:
        lines += ["| argument or option | what | default |", "|---|---|---|"]
        lines += [_param_row(param) for param in params]
        lines.append("")
    for name in sorted(subcommands):
        if not subcommands[name].hidden:
            _command(lines, subcommands[name], f"{path} {name}")


def _param_row(param: Any) -> str:
    if param.param_type_name == "argument":
        name = f"`{param.name.upper()}`"
    else:
        name = ", ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
    default = param.default if param.default not in (None, False, ()) else ""
    what = _plain(getattr(param, "help", None) or "").replace("|", "\\|")
    return f"| {name} | {what} | {f'`{default}`' if default != '' else ''} |"


def _plain(text: str) -> str:
    """One paragraph per blank line, as Click prints it."""
    return "\n".join(line.strip() for line in text.strip().splitlines())


# --- the HTTP API ------------------------------------------------------------------------


def http_reference() -> str:
    schema = openapi_schema()
    lines = ["# HTTP API reference", "", "Generated from the server's OpenAPI schema at build"]
    lines += ["time (a running server serves the same at `/openapi.json` and `/docs`).", ""]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            lines += _operation(path, method, operation)
    lines += ["## Schemas", "", "```json", json.dumps(schema.get("components", {}), indent=2)]
    lines += ["```", ""]
    return "\n".join(lines)


def openapi_schema() -> dict[str, Any]:
    """The routes' schema, from the API the server builds (no server, no registry)."""
    from prometheus_client import CollectorRegistry

    from servewell.http.routes import build_api
    from servewell.observability.metrics import ServingMetrics

    api = build_api(_nothing_running, ServingMetrics(CollectorRegistry()), lambda: False)
    return api.openapi()


def _nothing_running() -> RunningServer:
    """The docs build serves nothing: a route that asked would find no server."""
    raise RuntimeError("the documentation build runs no server")


def _operation(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"## `{method.upper()} {path}`", ""]
    summary = operation.get("summary") or operation.get("operationId", "")
    lines += [summary, ""]
    if operation.get("description"):
        lines += [_plain(operation["description"]), ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | required |", "|---|---|---|"]
        lines += [f"| `{p['name']}` | {p['in']} | {p.get('required', False)} |" for p in parameters]
        lines.append("")
    body = operation.get("requestBody", {}).get("content", {})
    if body:
        lines += ["Request body: " + ", ".join(f"`{kind}`" for kind in body), ""]
    responses = operation.get("responses", {})
    lines += ["| status | meaning |", "|---|---|"]
    lines += [f"| {code} | {answer.get('description', '')} |" for code, answer in responses.items()]
    return [*lines, ""]
