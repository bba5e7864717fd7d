from __future__ import annotations

import numpy as np
import pytest

from servewell.core import codec
from servewell.core.datatypes import V2_TO_NUMPY
from servewell.errors import InvalidInput

SAMPLES = {
    "BOOL": [[True, False]],
    "UINT8": [[0, 255]],
    "UINT64": [[0, 2**64 - 1]],
    "INT8": [[-128, 127]],
    "INT64": [[-(2**63), 2**63 - 1]],
    "FP16": [[0.5, -1.0]],
    "FP32": [[1.5, -2.25]],
    "FP64": [[0.1, 1e300]],
    "BYTES": [[b"a", "é".encode()]],
}


@pytest.mark.parametrize("datatype", SAMPLES)
def test_binary_round_trip(datatype: str) -> None:
    array = np.array(SAMPLES[datatype], dtype=V2_TO_NUMPY[datatype])
    name, shape, raw = codec.to_bytes(array)
    assert (name, shape) == (datatype, [1, 2])
    back = codec.from_bytes("x", datatype, (1, 2), raw)
    assert back.dtype == array.dtype
    assert back.tolist() == array.tolist()


@pytest.mark.parametrize("datatype", SAMPLES)
def test_json_round_trip(datatype: str) -> None:
    array = np.array(SAMPLES[datatype], dtype=V2_TO_NUMPY[datatype])
    name, shape, data = codec.to_json(array)
    values = [v.encode() if isinstance(v, str) else v for v in list(data)]
    back = codec.from_json("x", name, tuple(shape), values)
    assert back.tolist() == array.tolist()


def test_bytes_are_length_prefixed_little_endian() -> None:
    _, _, raw = codec.to_bytes(np.array([b"ab", b""], dtype=np.object_))
    assert raw == b"\x02\x00\x00\x00ab\x00\x00\x00\x00"


def test_nested_and_flat_json_data_are_the_same_tensor() -> None:
    nested = codec.from_json("x", "INT32", (2, 2), [[1, 2], [3, 4]])
    flat = codec.from_json("x", "INT32", (2, 2), [1, 2, 3, 4])
    assert nested.tolist() == flat.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: codec.from_json("x", "FP32", (3,), [1.0, 2.0]), "needs 3 values"),
        (lambda: codec.from_json("x", "FP32", (2,), [[1.0], [2.0, 3.0]]), "nested unevenly"),
        (lambda: codec.from_json("x", "UINT8", (1,), [256]), "outside the UINT8 range"),
        (lambda: codec.from_json("x", "INT32", (1,), [1.5]), "fraction"),
        (lambda: codec.from_bytes("x", "FP32", (2,), b"\x00" * 7), "needs 8"),
        (lambda: codec.from_bytes("x", "BOOL", (1,), b"\x02"), "0 or 1"),
        (lambda: codec.from_bytes("x", "BYTES", (1,), b"\x05\x00\x00\x00ab"), "ends inside"),
        (lambda: codec.from_bytes("x", "BYTES", (1,), b"\x00\x00\x00\x00z"), "left over"),
        (lambda: codec.check_shape("x", [1, -1]), "non-negative integers"),
        (lambda: codec.check_datatype("x", "FLOAT"), "unknown datatype"),
    ],
)
def test_malformed_tensors_name_the_input(call: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        call()  # type: ignore[operator]
    assert "'x'" in caught.value.message


def test_v2_json_null_is_a_missing_value_only_where_the_input_is_nullable() -> None:
    assert codec.from_json("sex", "BYTES", (2,), ["male", None], nullable=True).tolist() == [
        b"male",
        None,
    ]
    mass = codec.from_json("mass", "FP64", (2,), [1.5, None], nullable=True)
    assert mass[0] == 1.5
    assert np.isnan(mass[1])
    with pytest.raises(InvalidInput, match=r"expects FP64 numbers; got null at \[1\]"):
        codec.from_json("mass", "FP64", (2,), [1.5, None])
