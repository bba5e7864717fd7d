"""A stored label as the kind of value the model predicts, or None when it never can be."""

from __future__ import annotations

import numpy as np

from servewell.core.feedback import comparable_label


def test_numbers_for_numbered_classes_and_text_that_reads_as_one() -> None:
    assert comparable_label(1, np.int64(0)) == 1
    assert comparable_label("1", np.int64(0)) == 1
    assert comparable_label(" 2.5 ", 0.0) == 2.5
    assert comparable_label(True, np.int64(0)) == 1


def test_text_that_is_no_finite_number_is_never_compared_with_numbers() -> None:
    for label in ("nan", "inf", "-inf", "1e999", "yes", ""):
        assert comparable_label(label, np.int64(0)) is None, label
        assert comparable_label(label, 0.5) is None, label


def test_text_classes_take_any_label_as_text() -> None:
    assert comparable_label("spam", "ham") == "spam"
    assert comparable_label(1, "0") == "1"
