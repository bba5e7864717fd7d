"""The reference case end to end: `servewell demo`, then `predict` on real rows."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

Invoke = Callable[..., Result]


@pytest.fixture
def rows() -> list[dict[str, float]]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    return frame.drop(columns="target").head(5).to_dict(orient="records")  # type: ignore[no-any-return]


def test_demo_trains_checks_and_registers(demo: Result, invoke: Invoke) -> None:
    accuracy = float(re.search(r"test accuracy on 114 held-out rows: ([0-9.]+)", demo.stdout)[1])  # type: ignore[index]
    assert accuracy >= 0.90
    shown = json.loads(invoke("models", "show", "breast-cancer", "--json").stdout)
    assert shown["aliases"] == ["production"]
    assert shown["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert shown["signature"]["inputs"] == [
        {"name": "input", "datatype": "FP32", "shape": [-1, 30]}
    ]
    assert len(shown["signature"]["feature_names"]) == 30
    token = re.search(r"Bearer (sw_\S+)'", demo.stdout)[1]  # type: ignore[index]
    keys = json.loads(invoke("keys", "list", "--json").stdout)
    assert [(k["name"], k["models"]) for k in keys] == [
        ("demo-breast-cancer-v1", ["breast-cancer"])
    ]
    assert token.split("_")[1] == keys[0]["key_id"]
    assert "/v1/models/breast-cancer:predict" in demo.stdout
    roles = {a["role"] for a in shown["artifacts"]}
    assert roles == {
        "original",
        "onnx",
        "profile.json",
        "model_card.md",
        "report.json",
        "report.html",
        "validation.csv",
    }


def test_a_second_demo_reuses_its_version_and_its_key(
    demo: Result, invoke: Invoke, home: Path
) -> None:
    token = re.search(r"Bearer (sw_\S+)'", demo.stdout)[1]  # type: ignore[index]
    saved = home / "demo-key"
    assert saved.read_text().strip() == token
    assert saved.stat().st_mode & 0o777 == 0o600
    again = invoke("demo")
    assert again.exit_code == 0, again.output
    assert "breast-cancer@1 was registered from the same data and settings" in again.stdout
    assert f"Bearer {token}'" in again.stdout  # the same working curl line
    versions = json.loads(invoke("models", "list", "breast-cancer", "--json").stdout)
    assert [v["version"] for v in versions] == [1]
    assert [k["name"] for k in json.loads(invoke("keys", "list", "--json").stdout)] == [
        "demo-breast-cancer-v1"
    ]
    # A revoked demo key is replaced (under a new name: names stay taken), not reused.
    assert invoke("keys", "revoke", "demo-breast-cancer-v1").exit_code == 0
    third = invoke("demo")
    new_token = re.search(r"Bearer (sw_\S+)'", third.stdout)[1]  # type: ignore[index]
    assert new_token != token
    assert saved.read_text().strip() == new_token
    keys = json.loads(invoke("keys", "list", "--json").stdout)
    assert [(k["name"], k["revoked_at"] is None) for k in keys] == [
        ("demo-breast-cancer-v1", False),
        ("demo-breast-cancer-v1-2", True),
    ]


def test_predict_from_csv_and_json_agree(
    demo: Result, invoke: Invoke, rows: list[dict[str, float]], tmp_path: Path
) -> None:
    csv_path = tmp_path / "rows.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    json_path = tmp_path / "rows.json"
    json_path.write_text(json.dumps({"instances": rows}))
    from_csv = json.loads(invoke("predict", "breast-cancer", str(csv_path), "--json").stdout)
    from_json = json.loads(invoke("predict", "breast-cancer@1", str(json_path), "--json").stdout)
    assert from_csv == from_json
    assert [p["label"] for p in from_csv["predictions"]] == [0, 0, 0, 0, 0]  # all malignant
    table = invoke("predict", "breast-cancer", str(csv_path)).stdout
    assert "Predictions of breast-cancer@1" in table


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("[[1, 2, 3]]", "expects 30 values per row"),
        ('{"instances": []}', "empty batch"),
        ("not json", "is not valid JSON"),
        ('[{"mean radius": 1}]', "missing 29 feature"),
    ],
)
def test_predict_bad_input(
    demo: Result, invoke: Invoke, tmp_path: Path, payload: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(payload)
    result = invoke("predict", "breast-cancer", str(path))
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_predict_refuses_a_tampered_model(
    demo: Result, invoke: Invoke, home: Path, tmp_path: Path, rows: list[dict[str, float]]
) -> None:
    shown = json.loads(invoke("models", "show", "breast-cancer", "--json").stdout)
    onnx = next(a for a in shown["artifacts"] if a["role"] == "onnx")
    stored = home / "artifacts" / onnx["uri"].removeprefix("store://")
    stored.write_bytes(stored.read_bytes() + b"\x00")
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows))
    result = invoke("predict", "breast-cancer", str(path))
    assert result.exit_code == 3
    assert "modified after registration" in result.stderr
