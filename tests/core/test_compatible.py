"""Whether a model can stand in for another (a fallback): the first mismatch, named."""

from __future__ import annotations

from typing import Any

import pytest

from servewell.core.compatible import incompatibility
from servewell.core.signature import Signature

PRIMARY: dict[str, Any] = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 2]}],
    "outputs": [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
    ],
    "feature_names": ["a", "b"],
    "class_labels": [0, 1],
}


def _with(**changes: Any) -> Signature:
    return Signature.from_dict(PRIMARY | changes)


def test_the_same_signature_and_one_with_more_outputs_can_stand_in() -> None:
    primary = Signature.from_dict(PRIMARY)
    assert incompatibility(primary, primary, "m@2") is None
    more = [*PRIMARY["outputs"], {"name": "extra", "datatype": "BYTES", "shape": [-1]}]
    assert incompatibility(primary, _with(outputs=more), "m@2") is None


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"outputs": PRIMARY["outputs"][:1]}, "m@2 has no output 'probabilities'"),
        (
            {
                "outputs": [
                    {"name": "label", "datatype": "FP32", "shape": [-1]},
                    PRIMARY["outputs"][1],
                ]
            },
            "m@2 gives 'label' as FP32, not INT64",
        ),
        (
            {"inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 2]}]},
            "m@2 takes 'input' as FP64, not FP32",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]},
            "m@2 has no input 'input'",
        ),
        ({"feature_names": ["b", "a"]}, "m@2 has other feature_names (or another order)"),
        ({"class_labels": [1, 0]}, "m@2 has other class_labels (or another order)"),
        ({"max_batch_size": 8}, "m@2 takes at most 8 rows a request"),
        ({"feature_ranges": {"a": {"min": 0}}}, "m@2 takes a narrower range of 'a'"),
    ],
    ids=["output", "output-type", "input-type", "input", "features", "classes", "rows", "range"],
)
def test_the_first_mismatch_is_named(changes: dict[str, Any], says: str) -> None:
    assert incompatibility(Signature.from_dict(PRIMARY), _with(**changes), "m@2") == says


def test_an_input_shape_must_take_every_size_the_model_takes() -> None:
    wide = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, -1]}]}
    fixed = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]}
    assert incompatibility(Signature.from_dict(fixed), Signature.from_dict(wide), "w") is None
    assert incompatibility(Signature.from_dict(wide), Signature.from_dict(fixed), "f") == (
        "f takes 'x' of shape [-1, 3], not [-1, -1]"
    )
