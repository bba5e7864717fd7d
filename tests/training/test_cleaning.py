import numpy as np
import pandas as pd
import pytest

from servewell.errors import InvalidConfig, InvalidData
from servewell.training.cleaning import clean
from servewell.training.config import CleaningConfig, ValidRange
from servewell.training.data import infer_schema


def defective() -> pd.DataFrame:
    """30 good rows plus known defects, one kind each."""
    good = pd.DataFrame(
        {
            "clicks": [float(i % 7) for i in range(30)],
            "age": [str(20 + i) for i in range(30)],
            "device": ["mobile", "desktop", "tablet"] * 10,
            "clicked": [0, 1] * 15,
        }
    )
    bad = pd.DataFrame(
        {
            "clicks": [np.nan, np.nan, 1.0, 2.0, 3.0, 0.0],
            "age": ["31", "32", "abc", "500", "33", "34"],
            "device": ["mobile", "mobile", "mobile", "mobile", "mobile", "mobile"],
            "clicked": [0, 1, 0, 1, np.nan, 0],
        }
    )
    return pd.concat([good, bad, good.iloc[:4]], ignore_index=True)


def test_each_defect_is_counted_once_under_its_reason() -> None:
    frame = defective()
    schema = infer_schema(frame, "clicked")
    config = CleaningConfig(valid={"age": ValidRange(min=0, max=120)})
    cleaned, report = clean(frame, schema, "clicked", "classification", config)
    counts = {(d.reason, d.column): d.rows for d in report.drops}
    assert counts == {
        ("missing target", "clicked"): 1,
        ("invalid", "age"): 1,
        ("out of range", "age"): 1,
        ("missing", "clicks"): 2,
        ("duplicate", None): 4,
    }
    assert report.rows_out == len(cleaned) == 31
    assert "dropped 2 rows with missing `clicks`" in report.lines()
    assert "dropped 1 row with an invalid `age` (e.g. 'abc')" in report.lines()
    assert cleaned["age"].dtype == np.float64


def test_impute_keeps_rows_with_missing_features() -> None:
    frame = defective()
    config = CleaningConfig(missing="impute", duplicates="keep")
    cleaned, report = clean(
        frame, infer_schema(frame, "clicked"), "clicked", "classification", config
    )
    assert report.imputed == {"clicks": 2}
    assert cleaned["clicks"].isna().sum() == 2


def test_too_many_dropped_rows_is_an_error() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0] + [np.nan] * 4, "y": [0, 1] * 3})
    with pytest.raises(InvalidData, match=r"drop 67% of the rows.*missing `x`"):
        clean(frame, infer_schema(frame, "y"), "y", "classification", CleaningConfig())


def _with_ids() -> pd.DataFrame:
    """Twenty distinct orders: ten pairs alike in every column but the order number."""
    frame = pd.DataFrame(
        {
            "order_no": [f"A-{i}" for i in range(20)],
            "amount": [float(i % 10) for i in range(20)],
            "bought": [i % 2 for i in range(10)] * 2,
        }
    )
    return pd.concat([frame, frame.iloc[:3]], ignore_index=True)  # three true repeats


def test_rows_that_differ_in_an_ignored_column_are_not_duplicates() -> None:
    frame = _with_ids()
    schema = infer_schema(frame, "bought", {"order_no": "ignore"})
    cleaned, report = clean(frame, schema, "bought", "classification", CleaningConfig())
    duplicates = [d for d in report.drops if d.reason == "duplicate"]
    assert [d.rows for d in duplicates] == [3]
    assert len(cleaned) == 20
    assert "dropped 3 rows repeating an earlier row in every column" in report.lines()


def test_the_columns_that_define_a_duplicate_can_be_named() -> None:
    frame = _with_ids()
    schema = infer_schema(frame, "bought", {"order_no": "ignore"})
    config = CleaningConfig(duplicate_columns=("amount", "bought"), max_dropped_fraction=0.6)
    cleaned, report = clean(frame, schema, "bought", "classification", config)
    assert len(cleaned) == 10
    assert "dropped 13 rows repeating an earlier row in `amount`, `bought`" in report.lines()
    assert report.to_dict()["drops"][0]["columns"] == ["amount", "bought"]


def test_an_unknown_duplicate_column_is_refused() -> None:
    frame = _with_ids()
    config = CleaningConfig(duplicate_columns=("amout",))
    with pytest.raises(InvalidConfig, match=r"duplicate_columns: 'amout' is not a column"):
        clean(frame, infer_schema(frame, "bought"), "bought", "classification", config)
