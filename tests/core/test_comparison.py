"""core/comparison.py: row-by-row agreement of a shadow's answer with the primary's."""

from __future__ import annotations

import numpy as np
import pytest

from servewell.core.comparison import Incomparable, compare_rows


def test_a_regressor_agrees_within_the_documented_tolerance() -> None:
    primary = {"y": np.array([0.0, 1000.0, 1000.0, 1e-7, np.nan])}
    shadow = {"y": np.array([1e-6, 1000.9, 1001.1, 0.0, np.nan])}
    compared = compare_rows(primary, shadow)
    assert compared.agree.tolist() == [True, True, False, True, True]
    assert (compared.agreeing, compared.disagreeing) == (4, 1)
    assert compared.probability_diff is None


def test_a_row_agrees_only_when_every_output_does() -> None:
    primary = {"a": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array(["x", "y"], dtype=object)}
    shadow = {"a": np.array([[1.0, 2.0], [3.0, 4.5]]), "b": np.array(["x", "z"], dtype=object)}
    assert compare_rows(primary, shadow).agree.tolist() == [True, False]
    shadow["a"] = primary["a"]
    assert compare_rows(primary, shadow).agree.tolist() == [True, False]  # the text differs


def test_a_classifier_agrees_on_its_label_and_measures_its_probabilities() -> None:
    primary = {
        "label": np.array([0, 1, 1]),
        "probabilities": np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]], dtype=np.float32),
    }
    shadow = {
        "label": np.array([0, 0, 1]),
        "probabilities": np.array([[0.9, 0.1], [0.64, 0.36], [0.5, 0.5]], dtype=np.float32),
    }
    compared = compare_rows(primary, shadow)
    assert compared.agree.tolist() == [True, False, True]  # the label, not the probabilities
    assert compared.probability_diff is not None
    assert compared.probability_diff.tolist() == pytest.approx([0.0, 0.24, 0.3], abs=1e-6)


def test_no_rows_compare_as_none() -> None:
    compared = compare_rows({"y": np.zeros((0, 3))}, {"y": np.zeros((0, 3))})
    assert (compared.agreeing, compared.disagreeing) == (0, 0)


def test_a_missing_output_or_another_shape_is_incomparable() -> None:
    with pytest.raises(Incomparable, match="no output 'y'"):
        compare_rows({"y": np.zeros(2)}, {"z": np.zeros(2)})
    with pytest.raises(Incomparable, match=r"'y' is \[2\] from the primary and \[3\]"):
        compare_rows({"y": np.zeros(2)}, {"y": np.zeros(3)})
