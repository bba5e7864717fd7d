"""`servewell register --format torch` and `servewell optimize --to onnx` on it, from the
command line: the trust rule, the required signature, and a registered ONNX child."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from torch_models import require_torch, save_both, train_mlp, write_eval_csv, write_signature

Invoke = Callable[..., Result]
State = Callable[[], object]


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_torch()
    folder = tmp_path_factory.mktemp("cli-torch")
    return {
        **save_both(train_mlp(), folder),
        "signature": write_signature(folder),
        "eval": write_eval_csv(folder),
    }


def test_registers_torchscript_and_optimizes_it_to_onnx(
    invoke: Invoke, files: dict[str, Path]
) -> None:
    registered = invoke(
        "register", str(files["torchscript"]), "--name", "bands",
        "--signature", str(files["signature"]), "--json",
    )  # fmt: skip
    assert registered.exit_code == 0, registered.output
    assert json.loads(registered.stdout)["format"] == "torch"

    optimized = invoke(
        "optimize", "bands@1", "--to", "onnx", "--quantize", "dynamic-int8",
        "--eval", str(files["eval"]), "--target", "band", "--runs", "5", "--batches", "2",
        "--json",
    )  # fmt: skip
    assert optimized.exit_code == 0, optimized.output
    shown = json.loads(invoke("models", "show", "bands@2", "--json").stdout)
    assert shown["format"] == "onnx"
    assert shown["lineage"] == ["bands@2", "bands@1"]


@pytest.mark.parametrize(
    ("kind", "args", "says"),
    [
        ("pickle", ["--signature"], "--trust"),
        ("torchscript", [], "--signature"),
    ],
)
def test_refusals_are_one_line_and_change_nothing(
    kind: str,
    args: list[str],
    says: str,
    invoke: Invoke,
    files: dict[str, Path],
    registry_state: State,
) -> None:
    before = registry_state()
    extra = [*args, str(files["signature"])] if args else []
    result = invoke("register", str(files[kind]), "--name", "bands", *extra)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert registry_state() == before
