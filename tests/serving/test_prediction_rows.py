"""The flush thread's row builder on one mixed batch: each record's row as it alone
would be, and one that cannot be built left out without the others."""

from __future__ import annotations

import numpy as np
import orjson

from servewell.core.inference import InferRequest, InferResponse
from servewell.core.ref import ModelRef
from servewell.core.signature import Signature, TensorSpec
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
    signature: Signature,
    inputs: dict[str, object],
    outputs: dict[str, object],
    request_id: str = "r",
    v2_id: str | None = None,
    caller: str = "ip:127.0.0.1",
) -> Logged:
    request = InferRequest(ModelRef.parse(model), inputs, id=v2_id)
    response = InferResponse(model, 1, outputs)  # type: ignore[arg-type]
    answer = Answer(signature, request, response)
    return Logged(1.5, request_id, model, "1", None, caller, 0.002, answer)


def test_a_mixed_batch_gives_each_record_its_own_row() -> None:
    batch = [
        logged("num", NUMERIC, {"x": [[1.0, 2.0]]}, {"y": np.array([[3.0]], np.float32)}),
        logged("num", NUMERIC, {"x": [[1.0], [2.0], [3.0]]}, {"y": np.zeros((3, 2), np.float32)}),
        logged("num", NUMERIC, {"x": np.arange(4.0).reshape(2, 2).T}, {"y": np.arange(2)[::-1]}),
        logged("text", TEXT, {"text": [b"spam", "ham"], "n": [1, 2]}, {"label": [b"a", "b"]}),
        Logged(2.5, "hit", "num", "1", None, "team-a", 0.001, None),
        logged("num", NUMERIC, {"x": [[1.0]]}, {"y": np.ones(1)}, v2_id="v2", caller="team-b"),
    ]
    failed: list[Logged] = []
    rows = RowBuilder(lambda model: None).to_rows(batch, failed.append)
    assert failed == []
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


def test_a_record_that_cannot_be_built_is_left_out_and_the_others_kept() -> None:
    good = logged("num", NUMERIC, {"x": [[1.0]]}, {"y": np.ones(1)}, request_id="good")
    bad = logged("num", NUMERIC, {"x": [[1.0]]}, {"y": np.array([object()])}, request_id="bad")
    later = logged("num", NUMERIC, {"x": [[2.0]]}, {"y": np.ones(1)}, request_id="later")
    failed: list[Logged] = []
    rows = RowBuilder(lambda model: None).to_rows([good, bad, later], failed.append)
    assert [row.request_id for row in rows] == ["good", "later"]
    assert failed == [bad]


def test_log_inputs_none_and_hash_as_the_model_sets_them() -> None:
    policy = {"a": "none", "b": "hash"}
    batch = [
        logged("a", NUMERIC, {"x": [[1.0]]}, {"y": np.ones(1)}),
        logged("b", NUMERIC, {"x": [[1.0]]}, {"y": np.ones(1)}),
        logged("b", NUMERIC, {"x": [[1.0]]}, {"y": np.ones(1)}),
    ]
    rows = RowBuilder(policy.get).to_rows(batch, lambda _: None)
    assert rows[0].inputs is None
    assert rows[1].inputs == rows[2].inputs  # equal values hash alike
    assert "1.0" not in str(rows[1].inputs)
