import json
from pathlib import Path

import pytest

from servewell.core.signature import Signature, TensorSpec
from servewell.errors import InvalidSignature

GOOD = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 2]}],
    "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
    "feature_names": ["a", "b"],
    "feature_ranges": {"a": {"min": 0}},
    "class_labels": [0, 1],
    "max_batch_size": 16,
}


def test_round_trip_through_json(tmp_path: Path) -> None:
    path = tmp_path / "signature.json"
    path.write_text(json.dumps(GOOD))
    signature = Signature.from_json_file(path)
    assert signature.inputs[0] == TensorSpec(name="input", datatype="FP32", shape=(-1, 2))
    assert Signature.from_dict(signature.to_dict()) == signature


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**GOOD, "inputs": []}, "inputs"),
        ({**GOOD, "inputs": [{"name": "x", "datatype": "FLOAT", "shape": [-1]}]}, "datatype"),
        ({**GOOD, "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 0]}]}, "dimensions"),
        ({**GOOD, "feature_names": ["a"]}, "1 feature_names for 2 input columns"),
        ({**GOOD, "feature_ranges": {"z": {"min": 0}}}, "unknown features"),
        ({**GOOD, "colour": "blue"}, "colour"),
        ({**GOOD, "feature_ranges": {"a": {"min": float("nan")}}}, "'a': NaN is not a bound"),
        ({**GOOD, "feature_ranges": {"a": {"min": 2, "max": 1}}}, "min 2.0 is above max 1.0"),
        ({**GOOD, "max_batch_size": 0}, "max_batch_size: Input should be greater"),
        (
            {
                **GOOD,
                "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}],
            },
            r"class_labels has 2 labels, but output 'probabilities' is \[-1, 3\] \(3 classes\)",
        ),
    ],
)
def test_invalid_signatures_name_the_problem(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSignature, match=message):
        Signature.from_dict(data)


def test_file_that_does_not_parse(tmp_path: Path) -> None:
    path = tmp_path / "signature.json"
    path.write_text("{not json")
    with pytest.raises(InvalidSignature, match="not valid JSON"):
        Signature.from_json_file(path)
