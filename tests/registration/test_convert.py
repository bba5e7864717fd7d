"""A conversion describes its largest difference as ``models show`` shows the metric."""

from __future__ import annotations

from typing import Any

import numpy as np

from servewell.core.figure import format_figure
from servewell.registration.convert import convert_sklearn
from servewell.runtime.sklearn import signature_from_estimator


def test_the_difference_is_described_in_scientific_form_when_tiny(
    classifier: Any, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    conversion = convert_sklearn(
        classifier, signature_from_estimator(classifier), {"input": iris[0]}
    )
    diff = conversion.to_metrics()["onnx_max_abs_diff"]
    assert 0 < diff < 1e-3
    assert f"max difference {format_figure(diff)} on 150 rows" in conversion.describe()
    assert "e-0" in format_figure(diff)
