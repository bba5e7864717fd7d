"""The derived-feature step's ONNX operators compute what the step computes: datetime parts
across leap years, year ends and dates before 1970, datetime differences, ratios by zero,
logs of negatives, and missing values (NaN out for a missing datetime or number)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd

from servewell.core.datetimes import canonical_datetimes
from servewell.training.features import DerivedFeatures

PARTS = ["year", "month", "day", "weekday", "hour", "minute", "dayofyear"]
STAMPS = [
    "2024-02-29T23:59:59", "2023-12-31T00:00:00", "1969-07-20T20:17:40", "2000-03-01T12:00:00",
    "1900-01-01T06:30:00", "2100-12-31T18:45:10", None, "2024-01-01T00:00:00",
]  # fmt: skip
EARLIER = [
    "2024-02-28T23:59:59", "2022-12-31T12:00:00", "1969-07-16T13:32:00", None,
    "1899-12-31T00:00:00", "2100-01-01T00:00:00", "2024-01-01T00:00:00", "2023-12-31T23:00:00",
]  # fmt: skip


def _step() -> DerivedFeatures:
    features = [
        {"name": "at", "datetime": "stamp", "parts": PARTS},
        {"name": "gap", "difference": ["stamp", "earlier"], "unit": "h"},
        {"name": "rate", "ratio": ["clicks", "shown"], "fill": -1.0},
        {"name": "size", "log": "clicks"},
        {"name": "both", "product": ["clicks", "shown"]},
    ]
    return DerivedFeatures(features, ["stamp", "earlier"], ["device"])


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stamp": STAMPS,
            "earlier": EARLIER,
            "device": ["a", None, "b", "a", "", "b", "a", None],
            "clicks": [3.0, -2.5, 0.0, np.nan, 7.0, 1e6, 2.0, 0.5],
            "shown": [10.0, 0.0, 4.0, 2.0, np.nan, 3.0, 0.0, 8.0],
        }
    )


def _as_onnx(step: DerivedFeatures, precision: str) -> ort.InferenceSession:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    DerivedFeatures.register_onnx_converter()
    text = StringTensorType([None, 1])
    inputs = [("stamp", text), ("earlier", text), ("device", text)]
    inputs += [(name, DoubleTensorType([None, 1])) for name in ("clicks", "shown")]
    options = {id(step): {"precision": precision}}
    model = to_onnx(step, initial_types=inputs, options=options)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_the_onnx_step_computes_what_the_step_computes() -> None:
    frame = _frame()
    step = _step().fit(frame)
    expected = step.transform(frame)
    for precision in ("float", "double"):
        session = _as_onnx(step, precision)
        feeds = {}
        for name in ("stamp", "earlier"):
            raw = [None if pd.isna(v) else v.encode() for v in frame[name]]
            canonical, bad = canonical_datetimes(np.array(raw, dtype=object))
            assert bad is None
            texts = [b"" if item is None else item for item in canonical]
            feeds[name] = np.array([t.decode() for t in texts], dtype=object).reshape(-1, 1)
        feeds["device"] = np.array(
            ["" if pd.isna(v) else v for v in frame["device"]], dtype=object
        ).reshape(-1, 1)
        for name in ("clicks", "shown"):
            feeds[name] = frame[name].to_numpy(np.float64).reshape(-1, 1)
        # As the whole graph, the step's outputs keep the column names; its inputs are
        # renamed (``clicks1``), in the order given.
        feeds = {
            node.name: value
            for node, value in zip(session.get_inputs(), feeds.values(), strict=True)
        }
        names = [output.name for output in session.get_outputs()]
        got = dict(zip(names, session.run(None, feeds), strict=True))
        by_column = {_column_of(name, expected.columns): value for name, value in got.items()}
        for column in [f"at_{part}" for part in PARTS] + ["gap", "rate", "size", "both"]:
            tolerance = 1e-6 if precision == "float" else 1e-12
            np.testing.assert_allclose(
                by_column[column].ravel().astype(np.float64),
                expected[column].to_numpy(np.float64),
                rtol=tolerance,
                err_msg=f"{column} ({precision})",
            )
        assert by_column["device"].ravel().tolist() == ["a", "", "b", "a", "", "b", "a", ""]


def _column_of(onnx_name: str, columns: pd.Index) -> str:
    """skl2onnx may suffix an output name to keep it unique (``device1``)."""
    if onnx_name in columns:
        return onnx_name
    return next(c for c in columns if onnx_name.startswith(c) and onnx_name[len(c) :].isdigit())
