"""A ``default`` fallback's values, made into one row of each output at start-up, or
refused with one line naming the output and the value."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from servewell.core.signature import Signature
from servewell.errors import InvalidConfig
from servewell.serving.fallback_plan import default_outputs

SIGNATURE = Signature.from_dict(
    {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "flag", "datatype": "BOOL", "shape": [-1]},
            {"name": "text", "datatype": "BYTES", "shape": [-1]},
            {"name": "small", "datatype": "UINT8", "shape": [-1]},
        ],
    }
)


def test_values_become_one_row_in_the_output_s_datatype_in_signature_order() -> None:
    rows = default_outputs(
        SIGNATURE,
        {"text": "I'm unable to process your request at the moment.", "label": 0,
         "probabilities": [0.5, 0.5], "flag": True},
        "w",
    )  # fmt: skip
    assert list(rows) == ["label", "probabilities", "flag", "text"]
    assert rows["label"].dtype == np.int64
    assert rows["label"].tolist() == [0]
    assert rows["probabilities"].dtype == np.float32
    assert rows["probabilities"].shape == (1, 2)
    assert rows["flag"].tolist() == [True]
    assert rows["text"].tolist() == [b"I'm unable to process your request at the moment."]


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"nope": 1}, "w: default names the output 'nope'; the model gives 'label', "),
        ({"label": 0.5}, "w: default 'label': 0.5 does not fit INT64"),
        ({"label": "one"}, "w: default 'label': 'one' is not a number (the output is INT64)"),
        ({"small": -1}, "w: default 'small': -1 does not fit UINT8"),
        ({"flag": 2}, "w: default 'flag': 2 does not fit BOOL"),
        ({"probabilities": [1.0]}, "w: default 'probabilities': [1.0] has the shape [1] a row"),
        ({"probabilities": 1.0}, "w: default 'probabilities': 1.0 has the shape [] a row"),
        ({"text": 3}, "w: default 'text': 3 is not text (the output is BYTES)"),
    ],
)
def test_a_value_that_does_not_fit_is_refused_naming_it(given: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidConfig) as raised:
        default_outputs(SIGNATURE, given, "w")
    assert raised.value.message.startswith(says)
