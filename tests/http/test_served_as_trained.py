"""A trained pipeline served through a real server answers as the pipeline does in process,
missing values included: palmerpenguins' table (measurements and sexes missing), trained
with ``missing: impute``, takes a missing value as JSON null, ``""``, V2 JSON null and V2
binary NaN / empty text, each imputed as in training; a model trained with
``missing: drop`` keeps refusing null with a message that names the input."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from servewell.bootstrap import build_services
from servewell.core.ref import ModelRef
from servewell.http import create_app
from servewell.settings import AuthSettings, CacheSettings, ServerSettings, Settings
from servewell.training.data import dataset_from_frame
from servewell.training.run import run_pipeline
from serving_models import serve_in_thread
from training_tables import penguins, penguins_config

FEATURES = ("island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
COLUMNS = (*FEATURES, "sex", "year")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """penguins (imputing) and penguins-strict (dropping), served on a loopback port; the
    fitted pipelines by name, to compare with."""
    home = tmp_path_factory.mktemp("penguins") / "home"
    services = build_services(Settings(home=home))
    models = {}
    try:
        for name, missing in (("penguins", "impute"), ("penguins-strict", "drop")):
            config = penguins_config(missing).model_copy(update={"name": name})
            result = run_pipeline(dataset_from_frame(penguins(), name), config, services)
            models[name] = result.model
        assert services.registry.resolve(ModelRef.parse("penguins")).has_artifact("onnx")
    finally:
        services.close()
    settings = Settings(
        home=home,
        auth=AuthSettings(enabled=False),
        cache=CacheSettings(enabled=False),
        server=ServerSettings(models=["penguins", "penguins-strict"]),
    )
    with serve_in_thread(create_app(settings)) as server:
        yield server.url, models


def _local(model: Any, rows: list[dict[str, Any]]) -> np.ndarray:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame = frame.replace({"": np.nan}).fillna(np.nan)
    return np.asarray(model.predict_proba(frame))


ROWS = [
    {"island": "Torgersen", "bill_length_mm": 39.1, "bill_depth_mm": 18.7,
     "flipper_length_mm": 181.0, "body_mass_g": 3750.0, "sex": None, "year": 2007},
    {"island": "Biscoe", "bill_length_mm": None, "bill_depth_mm": None,
     "flipper_length_mm": None, "body_mass_g": None, "sex": None, "year": 2009},
    {"island": "Dream", "bill_length_mm": 49.0, "bill_depth_mm": 19.5,
     "flipper_length_mm": 210.0, "body_mass_g": None, "sex": "male", "year": 2008},
]  # fmt: skip


def test_rest_null_is_imputed_as_in_training(served) -> None:
    url, models = served
    answer = httpx.post(f"{url}/v1/models/penguins:predict", json={"instances": ROWS}, timeout=30)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(
        answer.json()["probabilities"], _local(models["penguins"], ROWS), atol=1e-5
    )


def test_an_empty_text_is_a_missing_value_not_a_category(served) -> None:
    url, models = served
    rows = [{**row, "sex": ""} for row in ROWS]
    answer = httpx.post(f"{url}/v1/models/penguins:predict", json={"instances": rows}, timeout=30)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(
        answer.json()["probabilities"], _local(models["penguins"], ROWS), atol=1e-5
    )


def _v2_tensors(rows: list[dict[str, Any]], signature_types: dict[str, str]) -> list[Any]:
    return [
        {
            "name": name,
            "datatype": signature_types[name],
            "shape": [len(rows)],
            "data": [row[name] for row in rows],
        }
        for name in COLUMNS
    ]


def test_v2_json_null_and_metadata_datatypes(served) -> None:
    url, models = served
    metadata = httpx.get(f"{url}/v2/models/penguins", timeout=30).json()
    types = {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}
    assert types["sex"] == "BYTES"
    assert types["year"] == "FP64"
    body = {"inputs": _v2_tensors(ROWS, types)}
    answer = httpx.post(f"{url}/v2/models/penguins/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    outputs = {output["name"]: output for output in answer.json()["outputs"]}
    declared = {output["name"]: output["datatype"] for output in metadata["outputs"]}
    assert outputs["probabilities"]["datatype"] == declared["probabilities"]  # what it says
    probabilities = np.array(outputs["probabilities"]["data"]).reshape(len(ROWS), -1)
    np.testing.assert_allclose(probabilities, _local(models["penguins"], ROWS), atol=1e-5)


def test_v2_binary_nan_and_empty_text(served) -> None:
    url, models = served
    metadata = httpx.get(f"{url}/v2/models/penguins", timeout=30).json()
    types = {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}
    entries, chunks = [], []
    for name in COLUMNS:
        values = [row[name] for row in ROWS]
        if types[name] == "BYTES":
            raw = b"".join(
                struct.pack("<I", len(text)) + text
                for text in (("" if v is None else str(v)).encode() for v in values)
            )
        else:
            raw = np.array([np.nan if v is None else v for v in values], dtype="<f8").tobytes()
        entries.append(
            {
                "name": name,
                "datatype": types[name],
                "shape": [len(ROWS)],
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        chunks.append(raw)
    header = orjson.dumps({"inputs": entries})
    answer = httpx.post(
        f"{url}/v2/models/penguins/infer",
        content=header + b"".join(chunks),
        headers={"Inference-Header-Content-Length": str(len(header))},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    outputs = {output["name"]: output for output in answer.json()["outputs"]}
    probabilities = np.array(outputs["probabilities"]["data"]).reshape(len(ROWS), -1)
    np.testing.assert_allclose(probabilities, _local(models["penguins"], ROWS), atol=1e-5)


def test_a_model_that_does_not_impute_refuses_null_by_name(served) -> None:
    url, _ = served
    answer = httpx.post(
        f"{url}/v1/models/penguins-strict:predict", json={"instances": ROWS[:1]}, timeout=30
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "input 'sex' expects text (BYTES); got null at [0]"


def test_every_validation_row_serves_as_the_pipeline_predicts(served, tmp_path: Path) -> None:
    url, models = served
    frame = penguins()
    rows = frame[list(COLUMNS)].astype(object).where(frame[list(COLUMNS)].notna(), None)
    instances = rows.to_dict(orient="records")
    answer = httpx.post(
        f"{url}/v1/models/penguins:predict", json={"instances": instances}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    local = models["penguins"].predict_proba(frame[list(COLUMNS)])
    np.testing.assert_allclose(answer.json()["probabilities"], local, atol=1e-5)
