from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from servewell.core.rows import to_plain, to_predictions
from servewell.core.signature import Signature

#: Every numpy dtype an ONNX or scikit-learn model can give, aliases included
#: (ONNX Runtime's INT64 is ``longlong``, its UINT64 ``ulonglong``).
MODEL_DTYPES = [
    np.bool_, np.int8, np.int16, np.int32, np.intc, np.int64, np.longlong,
    np.uint8, np.uint16, np.uint32, np.uintc, np.uint64, np.ulonglong,
    np.float16, np.float32, np.float64, np.dtype(">f4"), np.dtype(">i8"),
]  # fmt: skip


def _dumps(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))


@pytest.mark.parametrize("dtype", MODEL_DTYPES, ids=str)
def test_every_numeric_output_becomes_json(dtype: Any) -> None:
    matrix = np.array([[1, 0], [0, 1], [1, 1]]).astype(dtype)
    for values in (matrix, matrix.T, matrix[:, 0], matrix[0], np.array(matrix[0, 0])):
        plain = to_plain(values)
        assert _dumps(plain) == values.tolist()
        if values.ndim:  # rows index the column: each scalar must be writable too
            assert [_dumps(item) for item in plain] == values.tolist()


def test_text_outputs_become_strings() -> None:
    values = np.array([b"caf\xc3\xa9", "tea", np.int64(3)], dtype=np.object_)
    assert _dumps(to_plain(values)) == ["café", "tea", 3]
    assert _dumps(to_plain(np.array(["a", "b"]))) == ["a", "b"]


def test_rows_of_a_multi_output_model_without_class_labels() -> None:
    signature = Signature.from_dict(
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 2]}]}
    )
    outputs = {
        "label": np.array([0, 2], dtype=np.longlong),
        "probabilities": np.array([[0.75, 0.25], [0.5, 0.5]], dtype=np.float32).T.copy().T,
    }
    answer = _dumps(to_predictions(signature, outputs))
    assert answer == {
        "predictions": [
            {"label": 0, "probabilities": [0.75, 0.25]},
            {"label": 2, "probabilities": [0.5, 0.5]},
        ]
    }
