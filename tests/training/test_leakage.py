"""The leakage check catches copies of the target, near-copies and identifiers handed out
in target order, on a rare binary target and on balanced classes; identifiers of whole
numbers are left out of the features unless declared."""

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from servewell.training.config import PipelineConfig, parse_config
from servewell.training.data import dataset_from_frame
from servewell.training.run import train_pipeline
from training_tables import accounts, grades, in_target_order, noisy_copy, species


def _config(target: str, **overrides: object) -> PipelineConfig:
    data: dict[str, object] = {
        "name": "leak",
        "target": target,
        "estimator": {"kind": "logistic"},
        "checks": {"latency_rows": 10},
    }
    return parse_config(data | overrides)


def _leakage(frame: pd.DataFrame, target: str, **overrides: object):
    result = train_pipeline(dataset_from_frame(frame, "t"), _config(target, **overrides))
    return next(c for c in result.checks if c.name == "leakage"), result


Inject = Callable[[pd.Series], pd.Series]
LEAKS: dict[str, tuple[Inject, dict[str, object]]] = {
    "an exact 0/1 copy": (lambda y: y.copy(), {}),
    "a copy with 2% noise": (lambda y: noisy_copy(y), {}),
    "a text copy with 2% noise": (lambda y: noisy_copy(y).map(lambda v: f"status-{v}"), {}),
    "an id assigned in target order, kept": (
        in_target_order,
        {"columns": {"leaked": "numeric"}},
    ),
}


@pytest.mark.parametrize("leak", LEAKS)
def test_a_leak_of_a_rare_binary_target_is_flagged(leak: str) -> None:
    make, overrides = LEAKS[leak]
    frame = accounts(rows=4000, positive_share=0.03)
    frame["leaked"] = make(frame["defaulted"])
    check, _ = _leakage(frame, "defaulted", **overrides)
    assert check.status == "warn"
    assert "'leaked' alone predicts the target" in check.message
    assert check.figures["features"][0]["column"] == "leaked"
    assert check.figures["features"][0]["suspect"]
    ordinary = [s for s in check.figures["features"] if s["column"] != "leaked"]
    assert not any(s["suspect"] for s in ordinary)


BALANCED = {
    "3 species": (lambda: species(rows=1500), "kind"),
    "8 grades": (lambda: grades(rows=3000, classes=8), "grade"),
}


@pytest.mark.parametrize("table", BALANCED)
@pytest.mark.parametrize("leak", LEAKS)
def test_a_leak_of_balanced_classes_is_flagged(leak: str, table: str) -> None:
    make, overrides = LEAKS[leak]
    build, target = BALANCED[table]
    frame = build()
    codes = frame[target].astype("category").cat.codes
    frame["leaked"] = make(codes)
    check, _ = _leakage(frame, target, **overrides)
    assert check.status == "warn"
    assert "'leaked' alone predicts the target" in check.message


def test_the_same_tables_without_a_leak_pass() -> None:
    tables = [(accounts(rows=4000, positive_share=0.03), "defaulted")]
    tables += [(build(), target) for build, target in BALANCED.values()]
    for frame, target in tables:
        check, _ = _leakage(frame, target)
        assert check.status == "pass", check.message
        assert "strongest single feature" in check.message


def test_a_feature_the_model_cannot_improve_on_is_flagged() -> None:
    """An 8%-noise copy is no near-perfect predictor, but the model adds nothing to it."""
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x1": rng.normal(size=3000), "x2": rng.normal(size=3000)})
    frame["churned"] = (rng.random(3000) < 0.3).astype(int)
    frame["leaked"] = noisy_copy(frame["churned"], share=0.08)
    check, result = _leakage(frame, "churned")
    leaked = next(s for s in check.figures["features"] if s["column"] == "leaked")
    assert leaked["balanced_accuracy"] < 0.97  # not near perfect
    assert check.status == "warn"
    assert "about as well as the full model" in check.message
    assert check.figures["model"]["roc_auc"] == result.metrics.roc_auc


def test_a_unique_whole_number_column_is_an_identifier_left_out() -> None:
    frame = accounts(rows=1000)
    frame.insert(0, "account_no", np.random.default_rng(0).permutation(1000) + 10_000)
    frame["ordered_no"] = in_target_order(frame["defaulted"])
    _, result = _leakage(frame, "defaulted")
    columns = {c.name: c for c in result.schema.columns}
    for name in ("account_no", "ordered_no"):
        assert columns[name].kind == "ignore"
        assert "looks like an identifier" in columns[name].note
        assert name not in result.plan.inputs
    assert columns["balance"].kind == "numeric"  # unique too, but not whole numbers
    assert columns["age"].kind == "numeric"


def test_a_declared_identifier_is_kept() -> None:
    frame = accounts(rows=1000)
    frame["account_no"] = np.arange(1000)
    _, result = _leakage(frame, "defaulted", columns={"account_no": "numeric"})
    assert "account_no" in result.plan.inputs
