"""The text runtime: raw text in (V2 BYTES), tokenized here, MiniLM + head in ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from servewell.bootstrap import Services
from servewell.errors import InvalidArtifact, InvalidInput
from servewell.registration.register import register_file
from servewell.runtime import create_runtime
from servewell.runtime.text import TextRuntime, read_text_metadata
from servewell.serving.loading import open_runtime
from text_models import text_model, tickets

TOPICS = ("account", "billing", "returns", "shipping", "technical")


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return text_model(tmp_path_factory.getbasetemp() / "text-model")


@pytest.fixture
def runtime(model_path: Path) -> TextRuntime:
    loaded = TextRuntime(model_path)
    loaded.load()
    return loaded


def _texts(*texts: str) -> np.ndarray:
    return np.array([t.encode("utf-8") for t in texts], dtype=np.object_)


def test_signature_takes_raw_text_and_gives_topics(runtime: TextRuntime) -> None:
    signature = runtime.describe()
    assert [(s.name, s.datatype, s.shape) for s in signature.inputs] == [("text", "BYTES", (-1,))]
    assert [(s.name, s.datatype) for s in signature.outputs] == [
        ("label", "BYTES"),
        ("probabilities", "FP32"),
    ]
    assert signature.class_labels == TOPICS


def test_classifies_unseen_tickets(runtime: TextRuntime) -> None:
    rows = tickets()[-200:]  # never seen in training (the fixture fits on the first 240)
    outputs = runtime.predict({"text": _texts(*(text for text, _ in rows))})
    predicted = [label.decode() for label in outputs["label"]]
    assert np.mean([p == topic for p, (_, topic) in zip(predicted, rows, strict=True)]) > 0.85
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, rtol=1e-5)


def test_a_padded_batch_answers_like_texts_one_by_one(runtime: TextRuntime) -> None:
    texts = ("hi", "my card was charged twice for order #12345, please refund one", "app crash")
    batch = runtime.predict({"text": _texts(*texts)})
    for i, text in enumerate(texts):
        alone = runtime.predict({"text": _texts(text)})
        assert alone["label"][0] == batch["label"][i]
        np.testing.assert_allclose(alone["probabilities"][0], batch["probabilities"][i], atol=1e-5)


def test_accepts_str_and_column_shaped_text(runtime: TextRuntime) -> None:
    as_bytes = runtime.predict({"text": _texts("where is my parcel")})
    as_str = runtime.predict({"text": np.array([["where is my parcel"]], dtype=np.object_)})
    assert as_bytes["label"][0] == as_str["label"][0] == b"shipping"


def test_refuses_text_that_is_not_utf8_or_not_text(runtime: TextRuntime) -> None:
    with pytest.raises(InvalidInput, match="not valid UTF-8"):
        runtime.predict({"text": np.array([b"\xff\xfe"], dtype=np.object_)})
    with pytest.raises(InvalidInput, match="not text"):
        runtime.predict({"text": np.array([12], dtype=np.object_)})


def test_an_empty_batch_gives_empty_outputs(runtime: TextRuntime) -> None:
    outputs = runtime.predict({"text": np.array([], dtype=np.object_)})
    assert outputs["label"].shape == (0,)
    assert outputs["probabilities"].shape == (0, len(TOPICS))


def test_the_tokenizer_travels_inside_the_onnx_file(model_path: Path) -> None:
    tokenizer_json, config = read_text_metadata(model_path)
    assert '"WordPiece"' in tokenizer_json
    assert config.class_labels == TOPICS


def test_plain_onnx_without_a_tokenizer_is_refused(model_path: Path, tmp_path: Path) -> None:
    model = onnx.load(str(model_path))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(InvalidArtifact, match="without an embedded tokenizer"):
        TextRuntime(bare).load()


def test_registered_as_text_and_served_through_the_registry(
    sqlite_services: Services, model_path: Path
) -> None:
    version = register_file(sqlite_services, model_path, "tickets", format="text")
    assert version.format == "text"
    assert version.signature.inputs[0].datatype == "BYTES"
    runtime = open_runtime(sqlite_services, version)
    runtime.warm_up()
    outputs = runtime.predict({"text": _texts("I can't log in, my password is wrong")})
    assert outputs["label"][0] == b"account"
    factory_made = create_runtime("text", model_path)
    factory_made.load()
    assert isinstance(factory_made, TextRuntime)
