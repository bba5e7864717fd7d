"""``servewell profile``: a version registered without training (an ONNX file) gets a
reference profile from a table of its inputs, and ``servewell monitor`` then judges its
drift; a table that does not match its inputs, an unknown model or version, and a
profile already there are refused in one line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import Result

from monitored_models import write_logged
from servewell.bootstrap import Services, build_services
from servewell.registry.attachments import PROFILE_ROLE, read_attachment_json
from servewell.registry.predictions import PredictionRow
from servewell.settings import Settings
from serving_models import register_adder, register_doubler

Invoke = Callable[..., Result]


@pytest.fixture
def adder(
    home: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Services]:
    """``adder`` (ONNX: ``sum = x + y``, no training) in the registry the commands use."""
    monkeypatch.setenv("SERVEWELL_DATABASE_URL", database_url)
    services = build_services(Settings(home=home, database_url=database_url))
    register_adder(services, tmp_path)
    yield services
    services.close()


def inputs(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1, rows), "y": rng.normal(0, 1, rows)})


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def log_predictions(services: Services, frame: pd.DataFrame) -> None:
    now = datetime.now(UTC).timestamp()
    rows = [
        PredictionRow(
            now - 1200 + i,  # up to 200 s ago: every bucket closed
            f"r{i}",
            "adder",
            1,
            None,
            None,
            1.0,
            False,
            json.dumps({"sum": [[x + y]]}),
            json.dumps({"x": [[x]], "y": [[y]]}),
        )
        for i, (x, y) in enumerate(frame.itertuples(index=False))
    ]
    write_logged(services, rows)  # rows and window sketches, as a server writes them


def drift_of(invoke: Invoke, *how: str) -> dict[str, object]:
    """The window's drift, from its sketches (``--rescan``: from its rows)."""
    result = invoke("monitor", "adder", "--window", "1h", "--json", *how)
    assert result.exit_code == 0, result.output
    [group] = json.loads(result.stdout)["groups"]
    return group["drift"]  # type: ignore[no-any-return]


def test_a_profiled_onnx_model_is_judged_for_drift(
    invoke: Invoke, adder: Services, tmp_path: Path
) -> None:
    log_predictions(adder, inputs(1000, seed=2, shift=0.5))  # x moved by half a sigma
    assert drift_of(invoke)["features"] == []  # no reference yet: nothing judged
    data = write(inputs(3000, seed=1), tmp_path / "inputs.csv")
    result = invoke("profile", "adder", str(data))
    assert result.exit_code == 0, result.output
    assert "stored the reference profile of adder@1: 3,000 rows" in result.stdout
    assert "1,000 logged rows sketched against it" in result.stdout
    version = adder.registry.get_version("adder", 1)
    profile = read_attachment_json(adder, version, PROFILE_ROLE)
    assert profile["rows"] == 3000
    assert set(profile["features"]) == {"x", "y"}
    assert profile["prediction"]["kind"] == "numeric"  # the model was run on the rows
    assert profile["prediction"]["mean"] == pytest.approx(
        float((inputs(3000, seed=1).sum(axis=1)).mean()), abs=1e-5
    )
    # the rows logged before the profile were sketched against it (no --rescan needed)
    drift, rescanned = drift_of(invoke), drift_of(invoke, "--rescan")
    verdicts = {found["name"]: found["drift"] for found in drift["features"]}  # type: ignore[attr-defined]
    assert verdicts == {"x": True, "y": False}
    assert drift["prediction"]["name"] == "prediction"  # type: ignore[index]
    for mine, theirs in zip(drift["features"], rescanned["features"], strict=True):  # type: ignore[call-overload]
        assert mine["rows"] == theirs["rows"] == 1000
        for a, b in zip(mine["tests"], theirs["tests"], strict=True):
            assert a["statistic"] == pytest.approx(b["statistic"], abs=1e-6)


def test_a_profile_is_replaced_only_when_asked(
    invoke: Invoke, adder: Services, tmp_path: Path
) -> None:
    first = write(inputs(500, seed=1), tmp_path / "first.csv")
    assert invoke("profile", "adder", str(first)).exit_code == 0
    before = adder.registry.get_version("adder", 1).artifact(PROFILE_ROLE).sha256
    second = write(inputs(400, seed=2), tmp_path / "second.csv")
    refused = invoke("profile", "adder", str(second))
    assert refused.exit_code == 2
    assert "adder@1 already has a reference profile" in refused.stderr
    assert "--replace" in refused.stderr
    assert adder.registry.get_version("adder", 1).artifact(PROFILE_ROLE).sha256 == before
    replaced = invoke("profile", "adder", str(second), "--replace", "--json")
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(replaced.stdout) == {
        "model": "adder",
        "version": 1,
        "rows": 400,
        "features": {"x": "numeric", "y": "numeric"},
        "prediction": "sum",
        "replaced": True,
        "backfilled": {"spans": 0, "rebuilt": 0, "rows": 0},  # nothing logged yet
    }
    version = adder.registry.get_version("adder", 1)
    assert read_attachment_json(adder, version, PROFILE_ROLE)["rows"] == 400
    assert [a.role for a in version.artifacts].count(PROFILE_ROLE) == 1


def test_refusals(invoke: Invoke, adder: Services, tmp_path: Path) -> None:
    no_y = write(inputs(50, seed=1)[["x"]].assign(w=1.0), tmp_path / "xw.csv")
    missing = invoke("profile", "adder", str(no_y))
    assert missing.exit_code == 2
    assert "missing column(s) y; extra column(s) w (its inputs: x, y)" in missing.stderr
    extra = write(inputs(50, seed=1).assign(z=1.0, label=0), tmp_path / "xyz.csv")
    too_many = invoke("profile", "adder", str(extra))
    assert too_many.exit_code == 2
    assert "extra column(s) z, label" in too_many.stderr
    text = write(inputs(5, seed=1).assign(x="a"), tmp_path / "text.csv")
    not_numbers = invoke("profile", "adder", str(text))
    assert not_numbers.exit_code == 2
    assert "x" in not_numbers.stderr
    good = write(inputs(50, seed=1), tmp_path / "good.csv")
    assert invoke("profile", "nobody", str(good)).exit_code == 4
    assert invoke("profile", "adder", str(good), "--version", "7").exit_code == 4
    for refused in (missing, too_many, not_numbers):
        assert len(refused.stderr.strip().splitlines()) == 1
    assert not adder.registry.get_version("adder", 1).has_artifact(PROFILE_ROLE)


def test_a_matrix_without_feature_names_cannot_be_matched(
    invoke: Invoke, adder: Services, model_files: dict[str, Path], tmp_path: Path
) -> None:
    from servewell.registration.register import register_file

    register_file(adder, model_files["onnx"], "iris")
    data = write(pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0], "d": [4.0]}), tmp_path / "i.csv")
    result = invoke("profile", "iris", str(data))
    assert result.exit_code == 2
    assert "feature_names" in result.stderr


def test_a_one_input_model_profiles_a_one_column_csv(
    invoke: Invoke, adder: Services, tmp_path: Path
) -> None:
    register_doubler(adder, tmp_path)
    data = write(inputs(50, seed=1)[["x"]], tmp_path / "x1.csv")
    result = invoke("profile", "doubler", str(data))
    assert result.exit_code == 0, result.output
    assert adder.registry.get_version("doubler", 1).has_artifact(PROFILE_ROLE)
    junk = tmp_path / "notes.csv"
    junk.write_text("some notes\nnot a table\n")  # one column too, but not the model's input
    refused = invoke("profile", "doubler", str(junk), "--replace")
    assert refused.exit_code == 2
    assert "does not look like a CSV table" in refused.stderr


def test_a_value_beyond_fp32_is_named_without_a_warning(
    invoke: Invoke, adder: Services, tmp_path: Path
) -> None:
    frame = inputs(5, seed=1)
    frame.loc[2, "y"] = 1e308
    result = invoke("profile", "adder", str(write(frame, tmp_path / "huge.csv")))
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()  # pytest turns a numpy warning into an error
    assert "column 'y' of huge.csv has 1e+308 in data row 3, out of the FP32 range" in line
    assert not adder.registry.get_version("adder", 1).has_artifact(PROFILE_ROLE)
