"""``servewell predict``: run a registered model in-process on a JSON or CSV file,
through the server's own model steps (resolve, validate, predict, output filters)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import typer
from rich.table import Table

from servewell.cli.output import console, errors, open_services, print_json
from servewell.core.ref import ModelRef
from servewell.errors import InvalidInput
from servewell.jobs.tables import cell_value, is_number, taken_columns

if TYPE_CHECKING:
    import numpy as np

    from servewell.bootstrap import Services
    from servewell.core.inference import InferResponse
    from servewell.core.signature import Signature
    from servewell.registry import ModelVersion


def predict(
    reference: str = typer.Argument(..., help="name, name@3 or name@alias."),
    data: Path = typer.Argument(..., help="JSON (rows, {'instances': …} or {'inputs': …}) or CSV."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    strict: bool = typer.Option(
        False, "--strict", help="Refuse columns the model does not take (default: drop them)."
    ),
) -> None:
    """Predict locally, in this process, with a registered version."""
    with open_services() as services:
        version = services.registry.resolve(ModelRef.parse(reference))
        raw, unused = read_inputs(data, version.signature)
        if unused:
            _handle_unused(unused, strict)
        response = anyio.run(predict_locally, services, version, raw)
    rows = outputs_to_rows(version.signature, response.outputs)
    if as_json:
        print_json({"model": version.name, "version": version.version, "predictions": rows})
        return
    console.print(_table(f"{version.name}@{version.version}", rows))


async def predict_locally(
    services: Services, version: ModelVersion, inputs: dict[str, Any]
) -> InferResponse:
    """``inputs`` through a pool of one model, loaded in this process, and the server's
    model steps: validation, the model, the output filters."""
    from servewell.core.inference import InferRequest
    from servewell.serving.local import load_predictor

    predictor = await load_predictor(services, version)
    try:
        ref = ModelRef(version.name, version=version.version)
        return await predictor.infer(InferRequest(ref, inputs))
    finally:
        await predictor.pool.close()


def read_inputs(path: Path, signature: Signature) -> tuple[dict[str, Any], list[str]]:
    """Named inputs from a JSON or CSV file, and the columns left out because the model
    does not take them (the target, an identifier: what ``evaluate`` reads past)."""
    from servewell.core.rows import inputs_from_columns, inputs_from_instances

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not UTF-8 text") from exc
    taken = taken_columns(signature)
    if path.suffix.lower() == ".csv":
        rows, unused = _without_unused(_csv_rows(text, signature), taken)
        return inputs_from_instances(signature, rows), unused
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(document, dict) and "inputs" in document:
        columns, unused = _without_unused([document["inputs"]], taken)
        return inputs_from_columns(signature, columns[0]), unused
    if isinstance(document, dict) and "instances" in document:
        document = document["instances"]
    if not isinstance(document, list):
        raise InvalidInput(f"{path} must hold a list of rows, or an object with 'instances'")
    rows, unused = _without_unused(document, taken)
    return inputs_from_instances(signature, rows), unused


def _without_unused(rows: list[Any], taken: set[str]) -> tuple[list[Any], list[str]]:
    """Object rows without the keys the model does not take, and those keys in order."""
    unused: dict[str, None] = {}
    kept = []
    for row in rows:
        if not isinstance(row, dict):
            kept.append(row)
            continue
        unused.update((key, None) for key in row if key not in taken)
        kept.append({key: value for key, value in row.items() if key in taken})
    return kept, list(unused)


def _handle_unused(unused: list[str], strict: bool) -> None:
    names = ", ".join(unused[:10]) + (" …" if len(unused) > 10 else "")
    if strict:
        raise InvalidInput(f"the model does not take column(s) {names} (--strict)")
    errors.print(f"note: left out column(s) the model does not take: {names}", highlight=False)


def _csv_rows(text: str, signature: Signature) -> list[Any]:
    reader = csv.reader(text.splitlines())
    lines = [line for line in reader if line]
    if not lines:
        raise InvalidInput("the CSV file is empty")
    header, body = lines[0], lines[1:]
    if all(is_number(cell) for cell in header):  # no header row: values in feature order
        return [[cell_value(c) for c in line] for line in lines]
    text_columns = {spec.name for spec in signature.inputs if spec.datatype == "BYTES"}
    return [
        {
            name: cell_value(cell, name in text_columns)
            for name, cell in zip(header, line, strict=False)
        }
        for line in body
    ]


def outputs_to_rows(
    signature: Signature, outputs: dict[str, np.ndarray[Any, Any]]
) -> list[dict[str, Any]]:
    """One JSON-able dict per row; probabilities keyed by class label when known."""
    rows: list[dict[str, Any]] = []
    count = len(next(iter(outputs.values())))
    labels = signature.class_labels
    for index in range(count):
        row: dict[str, Any] = {}
        for name, values in outputs.items():
            value = values[index]
            if name == "probabilities" and labels is not None:
                row[name] = {str(label): float(p) for label, p in zip(labels, value, strict=True)}
            else:
                row[name] = _plain(value)
        rows.append(row)
    return rows


def _plain(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Predictions of {title}", title_justify="left")
    table.add_column("row", justify="right")
    for name in rows[0]:
        table.add_column(name)
    for index, row in enumerate(rows):
        table.add_row(str(index), *(_cell_text(value) for value in row.values()))
    return table


def _cell_text(value: Any) -> str:
    if isinstance(value, dict):
        return "  ".join(f"{k}: {v:.3f}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
