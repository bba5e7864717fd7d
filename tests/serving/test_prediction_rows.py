"""The row builder: records made on the request path hold plain values only; the flush
thread's rows of one mixed batch are each as its record alone would give, and one that
cannot be built is left out without the others."""

from __future__ import annotations

import contextlib
import gc

import numpy as np
import orjson
import pytest

from servewell.core.inference import InferRequest, InferResponse
from servewell.core.ref import ModelRef
from servewell.core.signature import Signature, TensorSpec
from servewell.core.validation import validate_inputs
from servewell.errors import InvalidInput
from servewell.observability import RequestRecord
from servewell.serving.prediction_rows import Answer, Logged, RowBuilder

NUMERIC = Signature(
    inputs=(TensorSpec(name="x", datatype="FP32", shape=(-1, -1)),),
    outputs=(TensorSpec(name="y", datatype="FP32", shape=(-1, -1)),),
)
TEXT = Signature(
    inputs=(
        TensorSpec(name="text", datatype="BYTES", shape=(-1,)),
        TensorSpec(name="n", datatype="INT32", shape=(-1,)),
    ),
    outputs=(TensorSpec(name="label", datatype="BYTES", shape=(-1,)),),
)


def logged(
    model: str,
    signature: Signature | None,
    inputs: dict[str, object],
    outputs: dict[str, object],
    request_id: str = "r",
    v2_id: str | None = None,
    caller: str = "ip:127.0.0.1",
    builder: RowBuilder | None = None,
) -> Logged:
    """The record the request path makes (``signature`` None: a response-cache hit)."""
    record = RequestRecord(request_id, "POST", "/", model=model, version="1", caller=caller)
    answer = None
    if signature is not None:
        request = InferRequest(ModelRef.parse(model), inputs, id=v2_id)
        sent: dict[str, np.ndarray] = {}  # as the predictor validates what was sent
        with contextlib.suppress(InvalidInput):
            validate_inputs(signature, inputs, sent=sent)
        response = InferResponse(model, 1, outputs, sent=sent or None)  # type: ignore[arg-type]
        answer = Answer(signature, request, response)
    return (builder or RowBuilder(lambda model: None)).logged(record, None, 0.002, answer)


def test_a_mixed_batch_gives_each_record_its_own_row() -> None:
    batch = [
        logged("num", NUMERIC, {"x": [[1.0, 2.0]]}, {"y": np.array([[3.0]], np.float32)}),
        logged("num", NUMERIC, {"x": [[1.0], [2.0], [3.0]]}, {"y": np.zeros((3, 2), np.float32)}),
        logged("num", NUMERIC, {"x": np.arange(4.0).reshape(2, 2).T}, {"y": np.arange(2)[::-1]}),
        logged("text", TEXT, {"text": [b"spam", "ham"], "n": [1, 2]}, {"label": [b"a", "b"]}),
        logged("num", None, {}, {}, request_id="hit", caller="team-a"),
        logged("num", NUMERIC, {"x": [[1.0]]}, {"y": np.ones(1)}, v2_id="v2", caller="team-b"),
    ]
    failed: list[Logged] = []
    rows, records = RowBuilder(lambda model: None).to_rows(batch, failed.append)
    assert failed == []
    assert records == batch
    outputs = [None if row.outputs is None else orjson.loads(row.outputs) for row in rows]
    inputs = [None if row.inputs is None else orjson.loads(row.inputs) for row in rows]
    assert outputs[:3] == [{"y": [[3.0]]}, {"y": [[0.0, 0.0]] * 3}, {"y": [1, 0]}]
    assert inputs[0] == {"x": [[1.0, 2.0]]}
    assert inputs[1] == {"x": [[1.0], [2.0], [3.0]]}
    assert inputs[2] == {"x": [[0, 2], [1, 3]]}  # a transposed array, as it reads
    assert outputs[3] == {"label": ["a", "b"]}
    hashed = inputs[3]["text"]
    assert len(hashed) == 2
    assert all(len(digest) == 32 for digest in hashed)
    assert "spam" not in str(rows[3].inputs)  # text hashed
    assert inputs[3]["n"] == [1, 2]  # numbers in full
    assert (rows[4].request_id, rows[4].cached, rows[4].outputs, rows[4].inputs) == (
        "hit",
        True,
        None,
        None,
    )
    assert [row.key_name for row in rows] == [None, None, None, None, "team-a", "team-b"]
    assert rows[5].request_id == "v2"
    assert (rows[0].latency_ms, rows[0].version, rows[0].cached) == (2.0, 1, False)


def test_a_record_holds_only_values_the_garbage_collector_need_not_follow() -> None:
    """Plain values, JSON text, and arrays (and dicts of them) for the window sketches."""
    record = logged("num", NUMERIC, {"x": [[1.0, 2]]}, {"y": np.ones((1, 1), np.float32)})
    assert not any(gc.is_tracked(field) for field in record)
    assert (record.outputs, record.inputs) == ('{"y":[[1.0]]}', '{"x":[[1.0,2]]}')
    assert record.input_arrays is not None
    assert record.output_arrays is not None
    assert record.input_arrays["x"].tolist() == [[1.0, 2.0]]
    assert record.output_arrays["y"].dtype == np.float32  # read through as_logged


def test_inputs_that_would_not_read_as_their_json_keep_no_arrays() -> None:
    """The arrays are validation's reading of what was sent: text, ragged rows and
    missing values have none (the row's JSON is read back); nor has NaN sent to a model
    that takes it (``[1, NaN]`` reads back as ``[1, None]``)."""
    nan = NUMERIC.model_copy(update={"allow_nan": True})
    for sent in ({"x": [["a", 1.0]]}, {"x": [[1.0], [2.0, 3.0]]}, {"x": [[None, 1.0]]}):
        assert logged("num", NUMERIC, sent, {"y": np.ones(1)}).input_arrays is None
    assert logged("num", nan, {"x": [[1, float("nan")]]}, {"y": np.ones(1)}).input_arrays is None
    assert logged("num", nan, {"x": [[1, 2.5]]}, {"y": np.ones(1)}).input_arrays is not None
    sent_array = np.ones((2, 2), np.float32)  # as V2 decodes one: kept, read as its JSON
    record = logged("num", NUMERIC, {"x": sent_array}, {"y": np.ones(1)})
    assert record.input_arrays is not None
    assert record.input_arrays["x"] is sent_array
    assert logged("num", None, {}, {}).output_arrays is None  # a cache hit


def test_a_record_whose_outputs_cannot_be_encoded_fails_on_the_request_path() -> None:
    with pytest.raises(TypeError):
        logged("num", NUMERIC, {"x": [[1.0]]}, {"y": np.array([object()])})


def test_a_record_that_cannot_be_built_is_left_out_and_the_others_kept() -> None:
    builder = RowBuilder(lambda model: None)  # text hashed, numbers in full
    good = logged(
        "text", TEXT, {"text": ["a"], "n": [1]}, {"label": ["x"]}, "good", builder=builder
    )
    bad = logged(
        "text", TEXT, {"text": ["a"], "n": [object()]}, {"label": ["x"]}, "bad", builder=builder
    )
    later = logged(
        "text", TEXT, {"text": ["b"], "n": [2]}, {"label": ["y"]}, "later", builder=builder
    )
    failed: list[Logged] = []
    rows, records = builder.to_rows([good, bad, later], failed.append)
    assert [row.request_id for row in rows] == ["good", "later"]
    assert records == [good, later]
    assert failed == [bad]


def test_log_inputs_none_and_hash_as_the_model_sets_them() -> None:
    policy = {"a": "none", "b": "hash"}
    builder = RowBuilder(policy.get)
    batch = [
        logged("a", NUMERIC, {"x": [[1.0]]}, {"y": np.ones(1)}, builder=builder),
        logged("b", NUMERIC, {"x": [[1.0]]}, {"y": np.ones(1)}, builder=builder),
        logged("b", NUMERIC, {"x": [[1.0]]}, {"y": np.ones(1)}, builder=builder),
    ]
    rows, _ = builder.to_rows(batch, lambda _: None)
    assert rows[0].inputs is None
    assert rows[1].inputs == rows[2].inputs  # equal values hash alike
    assert "1.0" not in str(rows[1].inputs)
