"""`servewell register --format python` and `servewell predict` on it, from the command
line: the options, one-line refusals that change nothing, and, in real processes, that
no code runs without --trust or from a tampered artifact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from servewell.runtime.bundle import write_bundle
from serving_models import PYTHON_MODELS

Invoke = Callable[..., Result]
State = Callable[[], object]
COLUMN = str(PYTHON_MODELS / "column.json")


def _register(invoke: Invoke, model: str, *args: str) -> Result:
    return invoke("register", str(PYTHON_MODELS / f"{model}.py"), "--name", model, *args)


def test_registers_a_model_class_with_its_folder_and_predicts(
    invoke: Invoke, tmp_path: Path
) -> None:
    registered = _register(
        invoke, "slow", "--format", "python", "--trust", "--signature", COLUMN,
        "--artifacts", str(PYTHON_MODELS / "slow_artifacts"), "--json",
    )  # fmt: skip
    assert registered.exit_code == 0, registered.output
    assert json.loads(registered.stdout)["format"] == "python"
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"x": 1.5}, {"x": -2}]))
    predicted = invoke("predict", "slow", str(rows), "--json")
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)["predictions"] == [{"y": 1.5}, {"y": -2.0}]


def test_class_names_one_of_several(invoke: Invoke, tmp_path: Path) -> None:
    result = _register(
        invoke, "two_classes", "--trust", "--signature", COLUMN, "--class", "Tripler"
    )
    assert result.exit_code == 0, result.output  # .py: the python format, by its suffix
    rows = tmp_path / "rows.json"
    rows.write_text("[2]")
    predicted = invoke("predict", "two_classes", str(rows), "--json")
    assert json.loads(predicted.stdout)["predictions"] == [{"y": 6.0}]


@pytest.mark.parametrize(
    ("model", "args", "says"),
    [
        ("sum", ["--signature", COLUMN], "sum.py is Python code; loading it runs arbitrary code"),
        ("sum", ["--trust"], "a 'python' model does not describe its inputs"),
        ("two_classes", ["--trust", "--signature", COLUMN], "name one with --class"),
        ("two_classes", ["--trust", "--signature", COLUMN, "--class", "Nope"], "'Nope'"),
        ("no_class", ["--trust", "--signature", COLUMN], "defines no model class"),
        ("slow", ["--trust", "--signature", COLUMN], "SlowModel.load(artifacts_dir) raised"),
        ("slow", ["--trust", "--signature", COLUMN, "--artifacts", COLUMN], "is not a folder"),
        (
            "slow",
            ["--trust", "--signature", COLUMN, "--artifacts", "no-such-folder"],
            "the artifacts folder no-such-folder does not exist",
        ),
    ],
)
def test_refusals_are_one_line_and_change_nothing(
    invoke: Invoke, registry_state: State, model: str, args: list[str], says: str
) -> None:
    before = registry_state()
    result = _register(invoke, model, *args)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert registry_state() == before


def test_the_name_defaults_to_the_file_s_stem(invoke: Invoke) -> None:
    args = ["--format", "python", "--trust", "--signature", COLUMN]
    result = invoke("register", str(PYTHON_MODELS / "two_classes.py"), "--class", "Doubler", *args)
    assert result.exit_code == 0, result.output
    assert "registered two_classes@1" in result.stdout


def test_a_stem_that_is_not_a_model_name_asks_for_one(
    invoke: Invoke, registry_state: State, tmp_path: Path
) -> None:
    source = tmp_path / "my model.py"
    source.write_text((PYTHON_MODELS / "two_classes.py").read_text())
    before = registry_state()
    result = invoke("register", str(source), "--trust", "--signature", COLUMN, "--class", "Doubler")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: 'my model' (from my model.py) is not a model name; give one with --name"
    )
    assert registry_state() == before


def test_python_options_are_refused_for_other_formats(
    invoke: Invoke, model_files: dict[str, Path]
) -> None:
    result = invoke("register", str(model_files["onnx"]), "--name", "iris", "--class", "X")
    assert result.exit_code == 2
    assert "for format 'python' only" in result.output


def _servewell(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    unpacked = home.parent / "unpacked"  # os._exit leaves what it unpacked behind
    unpacked.mkdir(exist_ok=True)
    environment = {**os.environ, "SERVEWELL_HOME": str(home), "TMPDIR": str(unpacked)}
    return subprocess.run(
        [str(Path(sys.executable).parent / "servewell"), *args],
        env=environment,
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_code_runs_without_trust(home: Path) -> None:
    """exits_on_import.py ends the process with status 17 when imported."""
    model = str(PYTHON_MODELS / "exits_on_import.py")
    refused = _servewell(home, "register", model, "--name", "bomb", "--signature", COLUMN)
    assert refused.returncode == 2, refused.stderr
    assert "is Python code" in refused.stderr
    trusted = _servewell(
        home, "register", model, "--name", "bomb", "--signature", COLUMN, "--trust"
    )
    assert trusted.returncode == 17  # trusted, it runs: so the refusal above ran nothing


def test_a_tampered_artifact_is_refused_before_its_code_runs(
    home: Path, invoke: Invoke, tmp_path: Path
) -> None:
    registered = _register(invoke, "sum", "--trust", "--signature", str(PYTHON_MODELS / "sum.json"))
    assert registered.exit_code == 0, registered.output
    shown = json.loads(invoke("models", "show", "sum@1", "--json").stdout)
    (uri,) = [a["uri"] for a in shown["artifacts"] if a["role"] == "original"]
    stored = home / "artifacts" / uri.removeprefix("store://")
    stored.chmod(0o644)
    write_bundle(PYTHON_MODELS / "exits_on_import.py", None, None, stored)  # swapped bytes
    rows = tmp_path / "rows.json"
    rows.write_text('[{"x": 1, "y": 2}]')
    predicted = _servewell(home, "predict", "sum@1", str(rows))
    assert predicted.returncode == 3, (predicted.returncode, predicted.stderr)  # not 17
    assert "modified after registration" in predicted.stderr
