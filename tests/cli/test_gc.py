"""`servewell gc`: a dry run lists, --apply deletes, a referenced file is never touched."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

Invoke = Callable[..., Result]


def _age_everything(home: Path) -> None:
    old = time.time() - 7200
    for path in (home / "artifacts").rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))


def test_gc_lists_then_deletes_only_unreferenced_old_files(
    invoke: Invoke, home: Path, model_files: dict[str, Path]
) -> None:
    assert invoke("register", str(model_files["onnx"]), "--name", "iris").exit_code == 0
    failed = invoke(
        "register", str(model_files["joblib"]), "--name", "iris", "--trust",
        "--parent", "nonexistent@1",
    )  # fmt: skip
    assert failed.exit_code == 4, failed.output
    (home / "artifacts" / "staging" / "upload-killed").write_bytes(b"x" * 10)
    assert "nothing to sweep" in invoke("gc").stdout  # everything is young

    _age_everything(home)
    dry = invoke("gc")
    assert dry.exit_code == 0, dry.output
    assert "Would delete (dry run)" in dry.stdout
    assert "unreferenced artifact" in dry.stdout
    assert "staging leftover" in dry.stdout
    assert "2 file(s)" in dry.stdout
    assert "--apply" in dry.stdout
    listed = json.loads(invoke("gc", "--json").stdout)
    assert listed["applied"] is False
    assert [item["reason"] for item in listed["files"]] == [
        "unreferenced artifact",
        "staging leftover",
    ]
    assert all((home / "artifacts" / item["path"]).exists() for item in listed["files"])

    applied = invoke("gc", "--apply")
    assert applied.exit_code == 0, applied.output
    assert "deleted 2 file(s)" in applied.stdout
    assert not any((home / "artifacts" / item["path"]).exists() for item in listed["files"])
    assert invoke("predict", "iris", _rows(home.parent)).exit_code == 0  # its file is there
    assert "nothing to sweep" in invoke("gc", "--apply").stdout


def _rows(folder: Path) -> str:
    path = folder / "rows.json"
    path.write_text(json.dumps([[5.1, 3.5, 1.4, 0.2]]))
    return str(path)
