"""``servewell register``: add a model file as the next version of a model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from servewell.cli.output import console, open_services, print_json, reporting_errors, who_am_i
from servewell.cli.versions import version_to_dict
from servewell.core.ref import ModelRef, check_name
from servewell.errors import InvalidInput, InvalidReference

if TYPE_CHECKING:
    from servewell.registry import ModelVersion


def register(
    path: Path = typer.Argument(
        ...,
        help="Model file: .onnx; .pt/.pth TorchScript; .joblib/.pkl, a torch.save'd .pt, "
        ".py (a Python model class): need --trust; a remote spec: --format remote.",
    ),
    name: str | None = typer.Option(
        None, "--name", "-n", help="Model name; default: the file's name without its suffix."
    ),
    format: str | None = typer.Option(
        None, "--format", help="onnx, sklearn, text, torch, python, remote; default: suffix."
    ),
    trust: bool = typer.Option(
        False,
        "--trust",
        help="Allow a pickle/joblib/torch.save file or Python model (loading it runs its code).",
    ),
    signature_file: Path | None = typer.Option(
        None,
        "--signature",
        help="JSON signature, instead of inferring one (required for torch and python).",
    ),
    artifacts: Path | None = typer.Option(
        None, "--artifacts", help="python: a folder stored with the file, given to its load()."
    ),
    model_class: str | None = typer.Option(
        None, "--class", help="python: the model class to serve, if the file defines several."
    ),
    metrics_file: Path | None = typer.Option(None, "--metrics", help="JSON object of metrics."),
    tag: list[str] = typer.Option([], "--tag", help="key=value; repeatable."),
    alias: str | None = typer.Option(None, "--alias", help="Point this alias at the new version."),
    parent: str | None = typer.Option(None, "--parent", help="name@version it derives from."),
    no_convert: bool = typer.Option(
        False, "--no-convert", help="Do not store an ONNX conversion of a scikit-learn model."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the version as JSON."),
) -> None:
    """Register a model file as a new, immutable version."""
    from servewell.core.signature import Signature
    from servewell.registration.register import RegisterOptions, register_file

    with reporting_errors():
        name = name or _name_from(path)
        options = RegisterOptions(
            signature=Signature.from_json_file(signature_file) if signature_file else None,
            metrics=_read_json_object(metrics_file) if metrics_file else {},
            tags=_parse_tags(tag),
            alias=alias,
            parent=ModelRef.parse(parent) if parent else None,
            convert=not no_convert,
            artifacts=artifacts,
            model_class=model_class,
            by=who_am_i(),
        )
    with open_services() as services, console.status(f"registering {path.name}…"):
        version = register_file(services, path, name, format=format, trust=trust, options=options)
    if as_json:
        print_json(version_to_dict(version))
    else:
        _print_registered(version, alias)


def _print_registered(version: ModelVersion, alias: str | None) -> None:
    served = "ONNX conversion" if version.has_artifact("onnx") else version.format
    if version.format == "remote":
        served = f"'{version.params.get('upstream_model')}' at {version.params.get('upstream_url')}"
    console.print(
        f"registered [bold]{version.name}@{version.version}[/] ({version.format}, "
        f"{version.size_bytes:,} bytes, sha256 {version.sha256[:12]}…; serves via {served})"
        + (f", alias [cyan]{alias}[/]" if alias else "")
    )


def _name_from(path: Path) -> str:
    """The model name a file gives without ``--name``: its stem, when that is one."""
    try:
        return check_name(path.stem)
    except InvalidReference:
        raise InvalidInput(
            f"'{path.stem}' (from {path.name}) is not a model name; give one with --name"
        ) from None


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} must hold a JSON object")
    return data


def _parse_tags(pairs: list[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"tag '{pair}' is not key=value")
        tags[key] = value
    return tags
