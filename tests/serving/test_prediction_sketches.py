"""The flush thread's window sketches (SQLite and PostgreSQL): an open bucket is saved
in place as it grows; a record for a bucket let go opens another row, which a window
merges; a model without a reference keeps counts and latencies; a store that fails is
logged, never raised into the flush; a batch sketched from its records' arrays equals
the same batch's JSON read back."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np
import orjson
import pytest

from fake_clock import FakeClock
from servewell.bootstrap import Services
from servewell.core.inference import InferRequest, InferResponse
from servewell.core.ref import ModelRef
from servewell.core.signature import Signature, TensorSpec
from servewell.core.validation import validate_inputs
from servewell.errors import InvalidInput
from servewell.observability import RequestRecord
from servewell.registry.predictions import PredictionRow
from servewell.registry.sketches import SketchStore
from servewell.serving.prediction_reading import Reading, Readings, column_of, reading_of
from servewell.serving.prediction_rows import Answer, Logged, RowBuilder, as_logged
from servewell.serving.prediction_sketches import (
    KEEP_OPEN_S,
    Gathered,
    PredictionSketcher,
    bucket_of,
    gather,
)
from servewell.stats import build_profile
from serving_models import register_adder

T = 1_800_000_000.0  # a bucket boundary (a multiple of 60)


def _row(at: float, latency_ms: float = 2.0) -> PredictionRow:
    outputs, inputs = '{"sum": [[3.0]]}', '{"x": [[2.0]], "y": [[1.0]]}'
    return PredictionRow(at, "r", "adder", 1, None, None, latency_ms, False, outputs, inputs)


def test_buckets_grow_in_place_and_late_records_open_another_row(
    services: Services, tmp_path: Path
) -> None:
    register_adder(services, tmp_path)
    clock = FakeClock(T + 5)
    sketcher = PredictionSketcher(
        SketchStore(services.registry), Readings(services).of, 60.0, 86400.0, clock=clock
    )
    sketcher.write([_row(T + 1), _row(T + 2, 4.0)])
    sketcher.write([_row(T + 3)])
    [row] = SketchStore(services.registry).window("adder")
    assert (row.starts_at, row.ends_at, row.bucket.logged) == (T, T + 60, 3)
    assert row.bucket.features == {}  # no reference profile: counts and latencies only
    assert row.bucket.latency.high == 4.0

    clock.advance(60 + KEEP_OPEN_S + 1)
    sketcher.write([_row(T + 61)])  # saves, then lets the first bucket go
    sketcher.write([_row(T + 4)])  # late: a new row for the first bucket
    rows = SketchStore(services.registry).window("adder", since=T)
    assert sorted((r.starts_at, r.bucket.logged) for r in rows) == [(T, 1), (T, 3), (T + 60, 1)]
    assert len({r.writer for r in rows}) == 3


def test_a_failing_store_is_logged_not_raised_and_saved_later(
    services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    register_adder(services, tmp_path)
    sketcher = PredictionSketcher(
        SketchStore(services.registry), Readings(services).of, 60.0, 86400.0, clock=FakeClock(T)
    )
    hit = PredictionRow(T + 1, "r", "adder", 1, None, "k", 1.0, True, None, None)  # cache hit
    with services.registry.read() as conn:
        conn.exec_driver_sql("ALTER TABLE prediction_sketches RENAME TO gone")
    with caplog.at_level(logging.WARNING):
        sketcher.write([hit])
    assert "could not save the prediction log's window sketches" in caplog.text
    with services.registry.read() as conn:
        conn.exec_driver_sql("ALTER TABLE gone RENAME TO prediction_sketches")
    sketcher.write([hit])  # the bucket kept in memory is saved with both
    [row] = SketchStore(services.registry).window("adder")
    assert (row.bucket.logged, row.bucket.cached) == (2, 2)


def _classifier() -> Reading:
    """A matrix model of three features (two numeric, one categorical of numbers),
    judged against a profile, predicting a class."""
    rng = np.random.default_rng(3)
    columns = {"a": rng.normal(size=500), "b": rng.exponential(size=500)}
    columns["c"] = rng.integers(0, 3, 500).astype(np.float64)
    kinds = {"a": "numeric", "b": "numeric", "c": "categorical"}
    profile = build_profile(columns, kinds, predictions=rng.integers(0, 2, 500))
    signature = Signature(
        inputs=(TensorSpec(name="input", datatype="FP32", shape=(-1, 3)),),
        outputs=(
            TensorSpec(name="label", datatype="INT64", shape=(-1,)),
            TensorSpec(name="probabilities", datatype="FP32", shape=(-1, 2)),
        ),
        feature_names=("a", "b", "c"),
        class_labels=(0, 1),
        allow_nan=True,
    )
    return reading_of("clf", signature, profile, None, "")


def _regressor() -> Reading:
    """A model of two named inputs, predicting a number in float32."""
    rng = np.random.default_rng(4)
    columns = {"x": rng.normal(size=500), "n": rng.integers(0, 9, 500)}
    profile = build_profile(
        columns,
        {"x": "numeric", "n": "numeric"},
        predictions=rng.normal(size=500),
        prediction_kind="numeric",
    )
    signature = Signature(
        inputs=(
            TensorSpec(name="x", datatype="FP32", shape=(-1,)),
            TensorSpec(name="n", datatype="FP32", shape=(-1,)),
        ),
        outputs=(TensorSpec(name="variable", datatype="FP32", shape=(-1,)),),
        allow_nan=True,
    )
    return reading_of("reg", signature, profile, None, "")


def _served(reading: Reading, inputs: dict[str, object], outputs: dict[str, object]) -> Logged:
    model = "clf" if reading.output == "label" else "reg"
    record = RequestRecord("r", "POST", "/", model=model, version="1")
    request = InferRequest(ModelRef.parse(model), inputs)
    sent: dict[str, np.ndarray] = {}  # as the predictor validates what was sent
    with contextlib.suppress(InvalidInput):
        validate_inputs(reading.signature, inputs, sent=sent)
    response = InferResponse(model, 1, outputs, sent=sent or None)  # type: ignore[arg-type]
    answer = Answer(reading.signature, request, response)
    return RowBuilder(lambda _: None).logged(record, None, 0.003, answer)


def test_a_batch_sketched_from_its_records_arrays_equals_its_json_read_back() -> None:
    """Whatever the request sent and the model answered (lists of numbers, integers among
    floats, float32 arrays whose JSON is their shortest text, NaN and infinities, which
    JSON writes as null), the flush thread's buckets from the records' own arrays are
    byte for byte those of the rows' JSON read back, as a backfill reads it."""
    rng = np.random.default_rng(5)
    clf, reg = _classifier(), _regressor()
    label = np.array([1], np.longlong)  # ONNX Runtime's INT64
    probabilities = np.array([[0.3, 0.7]], np.float32)
    batch = [
        _served(clf, {"input": [[0.5, 1, 2.0]]}, {"label": label, "probabilities": probabilities})
        for _ in range(3)
    ]
    batch += [
        _served(clf, {"input": rng.normal(size=(4, 3)).astype(np.float32)}, {"label": label}),
        _served(clf, {"input": [[float("nan"), 1.0, 2]]}, {"label": np.array([0])}),
        _served(clf, {"input": np.array([[np.inf, -np.inf, np.inf]])}, {"label": np.array([0])}),
        _served(clf, {"input": [[1.0, 2.0], [3.0]]}, {"label": np.array([1, 0])}),  # ragged
        _served(clf, {"input": [[0.1, 0.2, 1.0]] * 2}, {"label": np.array([True, False])}),
    ]
    regressed = rng.normal(size=5).astype(np.float32)
    batch += [
        _served(reg, {"x": [0.25, 1e300], "n": [1, 2]}, {"variable": regressed[:2]}),
        _served(reg, {"x": np.array([np.nan, 2.5]), "n": [3, 4]}, {"variable": regressed[2:4]}),
        _served(reg, {"x": [1.5], "n": [7]}, {"variable": np.array([np.inf])}),
    ]
    rows, records = RowBuilder(lambda _: None).to_rows(batch, lambda _: pytest.fail("built"))
    assert batch[0].input_arrays is not None
    assert batch[4].input_arrays is None  # NaN in a list: read from its JSON
    for reading in (clf, reg):
        model = "clf" if reading is clf else "reg"
        pairs = [(r, k) for r, k in zip(rows, records, strict=True) if r.model == model]
        own = _gathered([r for r, _ in pairs], [k for _, k in pairs])
        read_back = _gathered([r for r, _ in pairs])
        assert any(not isinstance(found, str) for found in own.inputs)
        mine, theirs = bucket_of(own, reading), bucket_of(read_back, reading)
        assert mine.features
        assert mine.prediction is not None
        assert mine.to_bytes() == theirs.to_bytes()


def test_a_logged_array_reads_as_its_json() -> None:
    """``as_logged`` of any array a record keeps is what the row's JSON of it reads back
    as, once ``column_of`` has read both: the same text of each value (what a categorical
    sketch compares, and a number's exact value), missing where the JSON has null."""
    arrays = [
        np.array([[0.1, 1.7]], np.float32),
        np.array([1.5, 2.25], np.float16),
        np.array([1, 2], np.longlong),
        np.array([[True], [False]]),
        np.array([0.1, np.nan, np.inf, -np.inf]),
        np.array([b"spam", "ham"], dtype=object),
        np.arange(6, dtype=np.uint8).reshape(2, 3).T,
    ]
    for array in arrays:
        logged = _served(_regressor(), {"x": [1.0], "n": [1]}, {"variable": array})
        assert logged.outputs is not None
        read_back = orjson.loads(logged.outputs)["variable"]
        mine, theirs = column_of([as_logged(array)]), column_of([read_back])
        assert list(map(_text, mine.tolist())) == list(map(_text, theirs.tolist()))


def _gathered(rows: list[PredictionRow], records: list[Logged] | None = None) -> Gathered:
    """The rows gathered in one group (a bucket longer than all time), with their
    records' arrays if given."""
    [group] = gather(rows, records, bucket_s=1e12).values()
    return group


def _text(value: object) -> str | None:
    return None if value is None or value != value else str(value)
