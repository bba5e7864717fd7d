import math

import numpy as np
import pytest

from servewell.core.signature import FeatureRange, Signature, TensorSpec
from servewell.core.validation import InputLimits, validate_inputs
from servewell.errors import InvalidInput

SIGNATURE = Signature(
    inputs=(TensorSpec(name="input", datatype="FP32", shape=(-1, 3)),),
    feature_names=("age", "height", "weight"),
    feature_ranges={"age": FeatureRange(min=0, max=150)},
)


def test_valid_rows_become_float32() -> None:
    arrays = validate_inputs(SIGNATURE, {"input": [[1, 2.5, 3], [4, 5, 6]]})
    assert arrays["input"].dtype == np.float32
    assert arrays["input"].shape == (2, 3)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "missing input 'input'"),
        ({"input": [[1, 2, 3]], "extra": [1]}, "unknown input"),
        ({"input": [[1, 2]]}, "expects 3 values per row"),
        ({"input": [1, 2, 3]}, "a single row must still be wrapped"),
        ({"input": [[1, 2, 3], [1, 2]]}, "not a rectangular array"),
        ({"input": [[1, "abc", 3]]}, "got text 'abc' at \\[0, 1\\]"),
        ({"input": [[1, None, 3]]}, "got null"),
        ({"input": [[True, False, True]]}, "got booleans"),
        ({"input": [[1, math.nan, 3]]}, "NaN and infinite values are not allowed"),
        ({"input": [[1, math.inf, 3]]}, "NaN and infinite"),
        ({"input": []}, "expects shape|empty batch"),
        ({"input": np.zeros((0, 3))}, "empty batch"),
        ({"input": [[200, 1, 1]]}, "feature 'age' is 200.0 in row 0; expected between 0"),
    ],
)
def test_each_bad_input_names_the_input_and_what_was_expected(
    inputs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_inputs(SIGNATURE, inputs)


def test_too_many_rows() -> None:
    with pytest.raises(InvalidInput, match="11 rows; at most 10 per request"):
        validate_inputs(SIGNATURE, {"input": np.ones((11, 3))}, InputLimits(max_rows=10))


def test_the_signatures_max_batch_size_bounds_the_rows_of_a_request() -> None:
    capped = SIGNATURE.model_copy(update={"max_batch_size": 4})
    assert len(validate_inputs(capped, {"input": np.ones((4, 3))})["input"]) == 4
    with pytest.raises(InvalidInput, match="5 rows; at most 4 per request"):
        validate_inputs(capped, {"input": np.ones((5, 3))})
    with pytest.raises(InvalidInput, match="5 rows; at most 2 per request"):  # the smaller
        validate_inputs(capped, {"input": np.ones((5, 3))}, InputLimits(max_rows=2))


def test_nan_allowed_when_the_signature_says_so() -> None:
    lenient = SIGNATURE.model_copy(update={"allow_nan": True})
    arrays = validate_inputs(lenient, {"input": [[1, math.nan, 3]]})
    assert math.isnan(arrays["input"][0, 1])


def test_integers_refuse_fractions_and_overflow() -> None:
    signature = Signature(inputs=(TensorSpec(name="ids", datatype="INT8", shape=(-1,)),))
    assert validate_inputs(signature, {"ids": [1.0, 2.0]})["ids"].dtype == np.int8
    with pytest.raises(InvalidInput, match="integers"):
        validate_inputs(signature, {"ids": [1.5]})
    with pytest.raises(InvalidInput, match="outside the INT8 range"):
        validate_inputs(signature, {"ids": [300]})


def test_text_inputs_become_bytes_with_a_length_limit() -> None:
    signature = Signature(inputs=(TensorSpec(name="text", datatype="BYTES", shape=(-1,)),))
    arrays = validate_inputs(signature, {"text": ["héllo", b"raw"]})
    assert list(arrays["text"]) == ["héllo".encode(), b"raw"]
    with pytest.raises(InvalidInput, match="at most 4"):
        validate_inputs(signature, {"text": ["hello"]}, InputLimits(max_text_bytes=4))
    with pytest.raises(InvalidInput, match="expects text"):
        validate_inputs(signature, {"text": [1]})


def test_bool_inputs() -> None:
    signature = Signature(inputs=(TensorSpec(name="flags", datatype="BOOL", shape=(-1,)),))
    assert validate_inputs(signature, {"flags": [True, 0, 1]})["flags"].tolist() == [
        True,
        False,
        True,
    ]
    with pytest.raises(InvalidInput, match="BOOL"):
        validate_inputs(signature, {"flags": [2]})


def test_large_unsigned_integers_are_exact() -> None:
    signature = Signature(inputs=(TensorSpec(name="ids", datatype="UINT64", shape=(-1,)),))
    top = 2**64 - 1
    assert validate_inputs(signature, {"ids": [3, top]})["ids"].tolist() == [3, top]
    assert validate_inputs(signature, {"ids": [3.0, top]})["ids"].tolist() == [3, top]
    with pytest.raises(InvalidInput, match="outside the UINT64 range"):
        validate_inputs(signature, {"ids": [-1.0, top]})
    with pytest.raises(InvalidInput, match="fraction"):
        validate_inputs(signature, {"ids": [0.5, top]})


def test_an_array_already_of_the_right_dtype_and_shape_is_taken_as_is() -> None:
    array = np.ones((2, 3), dtype=np.float32)
    assert validate_inputs(SIGNATURE, {"input": array})["input"] is array


def test_values_beyond_fp32_are_refused_after_the_cast() -> None:
    with pytest.raises(InvalidInput, match="NaN and infinite values are not allowed"):
        validate_inputs(SIGNATURE, {"input": [[1.0, 1e39, 3.0]]})


def test_finite_fp64_values_whose_sum_overflows_are_accepted() -> None:
    signature = Signature(inputs=(TensorSpec(name="x", datatype="FP64", shape=(-1, 2)),))
    arrays = validate_inputs(signature, {"x": [[1e308, 1e308]]})
    assert arrays["x"].tolist() == [[1e308, 1e308]]


def test_integers_of_another_width_are_range_checked() -> None:
    signature = Signature(inputs=(TensorSpec(name="ids", datatype="INT8", shape=(-1,)),))
    assert validate_inputs(signature, {"ids": [1, 2]})["ids"].dtype == np.int8
    with pytest.raises(InvalidInput, match="outside the INT8 range"):
        validate_inputs(signature, {"ids": [1, 300]})


@pytest.mark.parametrize(
    ("datatype", "row", "message"),
    [
        ("FP32", [1, None, 3], "input 'input' expects FP32 numbers; got null at [0, 1]"),
        ("FP32", [1, 2, {"a": 1}], "input 'input' expects FP32 numbers; got an object at [0, 2]"),
        ("INT64", [1, "7", 3], "input 'input' expects INT64 numbers; got text '7' at [0, 1]"),
        ("BYTES", ["a", None, "c"], "input 'input' expects text (BYTES); got null at [0, 1]"),
        ("BYTES", ["a", "b", 3], "input 'input' expects text (BYTES); got the number 3 at [0, 2]"),
        ("BYTES", [True, "b", "c"], "input 'input' expects text (BYTES); got true at [0, 0]"),
    ],
)
def test_a_wrong_value_is_named_once_with_what_was_expected_and_where(
    datatype: str, row: list[object], message: str
) -> None:
    signature = Signature(inputs=(TensorSpec(name="input", datatype=datatype, shape=(-1, 3)),))
    with pytest.raises(InvalidInput) as raised:
        validate_inputs(signature, {"input": [row]})
    assert raised.value.message == message


def test_a_declared_datatype_must_be_the_signatures() -> None:
    inputs = {"input": np.ones((1, 3), dtype=np.float16)}
    with pytest.raises(InvalidInput) as raised:
        validate_inputs(SIGNATURE, inputs, datatypes={"input": "FP16"})
    assert raised.value.message == (
        'input \'input\' was sent as FP16; the model takes FP32 (send it with "datatype": "FP32")'
    )
    assert validate_inputs(SIGNATURE, inputs)["input"].dtype == np.float32  # undeclared: cast
    declared = validate_inputs(SIGNATURE, {"input": [[1, 2, 3]]}, datatypes={"input": "FP32"})
    assert declared["input"].dtype == np.float32


NULLABLE = Signature(
    inputs=(
        TensorSpec(name="mass", datatype="FP64", shape=(-1,), nullable=True),
        TensorSpec(name="sex", datatype="BYTES", shape=(-1,), nullable=True),
    )
)


def test_a_nullable_input_takes_null_nan_and_empty_text_as_missing() -> None:
    arrays = validate_inputs(
        NULLABLE, {"mass": [3750.0, None, math.nan], "sex": [None, "", "male"]}
    )
    assert arrays["mass"][0] == 3750.0
    assert np.isnan(arrays["mass"][1:]).all()
    assert list(arrays["sex"]) == [None, None, b"male"]
    fast = validate_inputs(NULLABLE, {"mass": np.array([1.0, np.nan]), "sex": [b"", math.nan]})
    assert np.isnan(fast["mass"][1])
    assert list(fast["sex"]) == [None, None]


def test_a_nullable_input_still_refuses_infinity_and_text() -> None:
    with pytest.raises(InvalidInput, match=r"has inf at \[1\]; infinite values are not allowed"):
        validate_inputs(NULLABLE, {"mass": [1.0, math.inf], "sex": ["a", "b"]})
    with pytest.raises(InvalidInput, match="expects FP64 numbers; got text 'heavy' at \\[1\\]"):
        validate_inputs(NULLABLE, {"mass": [None, "heavy"], "sex": ["a", "b"]})


def test_only_float_and_text_inputs_can_be_nullable() -> None:
    with pytest.raises(ValueError, match="only float and BYTES tensors can be nullable"):
        TensorSpec(name="n", datatype="INT64", shape=(-1,), nullable=True)


DATED = Signature(
    inputs=(TensorSpec(name="at", datatype="BYTES", shape=(-1,), datetime=True, nullable=True),)
)


def test_datetimes_reach_the_model_in_one_layout() -> None:
    spellings = ["2024-03-01 12:30", "2024-03-01T12:30:00Z", "2024-03-01T14:30:00.9+02:00"]
    arrays = validate_inputs(DATED, {"at": [*spellings, None]})
    assert list(arrays["at"]) == [b"2024-03-01T12:30:00"] * 3 + [None]
    with pytest.raises(InvalidInput) as raised:
        validate_inputs(DATED, {"at": ["2024-03-01", "yesterday"]})
    assert raised.value.message == (
        "input 'at' expects ISO 8601 datetimes (such as 2024-03-01T12:30:00); "
        "got text 'yesterday' at [1]"
    )


def test_text_arrays_as_a_codec_makes_them_are_checked_as_any_other_text() -> None:
    """An array of bytes (chat's ``messages``) takes the quick path; what it refuses or
    cannot take (too long, a str, a list) the full path decides, with its message."""
    signature = Signature(
        inputs=(TensorSpec(name="messages", datatype="BYTES", shape=(-1,)),),
        outputs=(TensorSpec(name="text", datatype="BYTES", shape=(-1,)),),
    )
    limits = InputLimits(max_text_bytes=8)
    quick = np.array([b"short"], dtype=object)
    assert validate_inputs(signature, {"messages": quick}, limits)["messages"] is quick
    mixed = np.array([b"a", "b"], dtype=object)
    assert validate_inputs(signature, {"messages": mixed}, limits)["messages"].tolist() == [
        b"a",
        b"b",
    ]
    assert validate_inputs(signature, {"messages": ["c"]}, limits)["messages"].tolist() == [b"c"]
    with pytest.raises(InvalidInput, match="item 0 is 9 bytes; at most 8"):
        validate_inputs(signature, {"messages": np.array([b"123456789"], dtype=object)}, limits)
    with pytest.raises(InvalidInput, match="expects shape"):
        validate_inputs(signature, {"messages": np.array([[b"a"]], dtype=object)}, limits)


def test_sent_holds_what_was_sent_as_numpy_read_it_when_the_model_gets_a_cast() -> None:
    """``sent``: each input before its cast (the prediction log's sketches read it), when
    every input was cast or came as an array; not an array the model itself is handed."""
    two = Signature(inputs=(TensorSpec(name="x", datatype="FP32", shape=(-1, 2)),))
    sent: dict[str, np.ndarray] = {}
    validate_inputs(two, {"x": [[1, 2.5]]}, sent=sent)
    assert sent["x"].dtype == np.float64
    assert sent["x"].tolist() == [[1.0, 2.5]]
    given = np.ones((1, 2), np.float32)  # the request's own array (V2), as it is
    sent = {}
    validate_inputs(two, {"x": given}, sent=sent)
    assert sent["x"] is given
    fp64 = Signature(inputs=(TensorSpec(name="x", datatype="FP64", shape=(-1, 2)),))
    int32 = Signature(inputs=(TensorSpec(name="x", datatype="INT32", shape=(-1, 2)),))
    for signature, values in ((fp64, [[1.0, 2.5]]), (int32, [[1, 2]])):
        sent = {}  # the array the model is handed; one the slow path read
        validate_inputs(signature, {"x": values}, sent=sent)
        assert sent == {}
