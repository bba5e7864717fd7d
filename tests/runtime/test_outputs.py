"""What a user's predict returns, held to its signature: cast where nothing is lost but
float precision, refused (ModelFailed, naming the output) where it does not fit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from servewell.core.signature import Signature
from servewell.errors import ModelFailed
from servewell.runtime.outputs import conform_outputs


def _signature(datatype: str, shape: list[int]) -> Signature:
    return Signature.from_dict(
        {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}],
            "outputs": [{"name": "out", "datatype": datatype, "shape": shape}],
        }
    )


@pytest.mark.parametrize(
    ("datatype", "value", "expected"),
    [
        ("FP32", np.array([0.5, 1.5]), np.array([0.5, 1.5], dtype=np.float32)),
        ("FP64", np.array([1, 2], dtype=np.int32), np.array([1.0, 2.0])),
        ("INT64", np.array([True, False]), np.array([1, 0], dtype=np.int64)),
        ("INT32", np.array([7, -7], dtype=np.int64), np.array([7, -7], dtype=np.int32)),
        ("UINT8", [1, 255], np.array([1, 255], dtype=np.uint8)),
        ("BYTES", np.array(["a", "é"]), np.array([b"a", "é".encode()], dtype=object)),
        ("BYTES", np.array([b"a", "b"], dtype=object), np.array([b"a", b"b"], dtype=object)),
    ],
)
def test_values_that_fit_take_the_declared_datatype(
    datatype: str, value: Any, expected: np.ndarray
) -> None:
    (out,) = conform_outputs(_signature(datatype, [-1]), {"out": value}, "M.predict").values()
    assert out.dtype == expected.dtype
    assert out.tolist() == expected.tolist()


@pytest.mark.parametrize(
    ("datatype", "shape", "value", "says"),
    [
        ("INT64", [-1], np.array([0.5]), r"as float64; its signature says INT64"),
        ("INT32", [-1], np.array([2**40]), r"as int64; its signature says INT32"),
        ("BOOL", [-1], np.array([0, 1]), r"as int64; its signature says BOOL"),
        ("BYTES", [-1], np.array([1.0]), r"as float64; its signature says BYTES"),
        ("BYTES", [-1], np.array([b"a", 3], dtype=object), r"holding int values; BYTES outputs"),
        ("FP32", [-1, 2], np.zeros((4, 3)), r"of shape \[4, 3\]; its signature says \[-1, 2\]"),
        ("FP32", [-1], np.float32(1.0), r"of shape \[\]; its signature says \[-1\]"),
        ("FP32", [-1], [[1.0], [2.0, 3.0]], r"that is not an array"),
    ],
)
def test_values_that_do_not_fit_are_the_models_failure(
    datatype: str, shape: list[int], value: Any, says: str
) -> None:
    with pytest.raises(ModelFailed, match=r"^M\.predict returned 'out' " + says):
        conform_outputs(_signature(datatype, shape), {"out": value}, "M.predict")


@pytest.mark.parametrize(
    ("returned", "says"),
    [
        ([np.zeros(1)], r"returned a list, not a dict of arrays"),
        ({}, r"returned the outputs \[\], its signature declares \['out'\]: missing \['out'\]"),
        (
            {"out": np.zeros(1), "debug": np.zeros(1)},
            r"returned the outputs \['debug', 'out'\], .*: not declared \['debug'\]",
        ),
    ],
)
def test_the_names_are_exactly_the_declared_ones(returned: Any, says: str) -> None:
    with pytest.raises(ModelFailed, match=says):
        conform_outputs(_signature("FP32", [-1]), returned, "M.predict")
