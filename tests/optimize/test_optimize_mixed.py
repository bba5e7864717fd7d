"""`optimize` on models that `servewell train` fitted to mixed numeric + categorical tables
(the real pipeline: one-hot categories, scaled numbers, an MLP), whose ONNX conversions
compute in float32 or float64: every method makes a smaller child that serves what its report
promised, and a model with no weights to shrink is refused in one line.

Two tables: one generated here (a churn table: plans, regions, tenure, spend, tickets)
and the Palmer penguins, which the ``palmerpenguins`` package ships offline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest

from servewell.bootstrap import Services, build_services
from servewell.errors import InvalidInput
from servewell.optimize.benchmark import BenchmarkPlan
from servewell.optimize.precision import computes_in_float64
from servewell.optimize.result import OptimizeOptions
from servewell.optimize.run import optimize_version, register_optimized
from servewell.registry import ModelVersion
from servewell.serving.loading import open_runtime, serving_artifact_role
from servewell.settings import Settings
from servewell.stats import classification_metrics
from servewell.training.config import parse_config
from servewell.training.data import dataset_from_frame
from servewell.training.holdout import load_holdout
from servewell.training.run import run_pipeline

QUICK = BenchmarkPlan(single_runs=5, batches=2, rounds=2)
METHODS = ("dynamic-int8", "static-int8", "fp16", "none")


def churn_table(rows: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Customers: two categorical and three numeric columns; churn follows all of them."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], rows)
    tenure = rng.integers(1, 120, rows).astype(float)
    spend = rng.gamma(2.0, 150.0, rows).round(2)
    tickets = rng.poisson(2, rows).astype(float)
    score = (
        0.01 * tenure
        - 0.004 * spend
        + 0.6 * (plan == "pro")
        + 0.4 * (region == "north")
        - 0.5 * tickets
        + 1.5
    )
    churned = (score + rng.normal(0, 0.4, rows) > 0).astype(int)
    return pd.DataFrame(
        {
            "plan": plan,
            "region": region,
            "tenure_months": tenure,
            "monthly_spend": spend,
            "support_tickets": tickets,
            "churned": churned,
        }
    )


def penguins_table() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()  # species from island, sex, four measurements and the year


TABLES = {"churn": (churn_table, "churned"), "penguins": (penguins_table, "species")}


def _config(name: str, target: str, kind: str = "mlp") -> Any:
    estimator: dict[str, Any] = {"kind": kind, "seed": 0}
    if kind == "mlp":
        estimator.update(params={"hidden_layer_sizes": [128, 64]}, max_epochs=300)
        estimator["on_no_convergence"] = "warn"
    return parse_config(
        {"name": name, "target": target, "estimator": estimator, "checks": {"latency_rows": 10}}
    )


@pytest.fixture(scope="module")
def access(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    built = build_services(Settings(home=tmp_path_factory.mktemp("mixed") / "home"))
    yield built
    built.close()


def _train(access: Services, table: str, kind: str = "mlp") -> ModelVersion:
    make, target = TABLES[table]
    name = f"{table}-{kind.replace('_', '-')}"
    result = run_pipeline(dataset_from_frame(make(), table), _config(name, target, kind), access)
    assert result.version is not None
    return result.version


@pytest.fixture(scope="module")
def trained(access: Services) -> dict[str, ModelVersion]:
    return {table: _train(access, table) for table in TABLES}


def _source_graph(access: Services, version: ModelVersion) -> onnx.ModelProto:
    artifact = version.artifact(serving_artifact_role(version, prefer_onnx=True))
    assert artifact.format == "onnx"  # the pipeline converted; optimize starts from it
    return onnx.load_from_string(access.artifacts.fetch(artifact.uri, artifact.sha256).read_bytes())


def _served_accuracy(access: Services, version: ModelVersion) -> float:
    holdout = load_holdout(access, version, None, None)  # the validation split, carried over
    runtime = open_runtime(access, version)
    try:
        labels = runtime.predict(holdout.inputs)["label"]
    finally:
        runtime.close()
    labels_known = version.signature.class_labels
    return classification_metrics(holdout.truth, labels, labels=labels_known).accuracy


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("table", list(TABLES))
def test_every_method_shrinks_a_mixed_type_model_and_serves_what_it_promised(
    access: Services, trained: dict[str, ModelVersion], table: str, method: str
) -> None:
    source = trained[table]
    # The conversion gate keeps float32 when it is faithful, else float64; what is
    # asserted holds for either (tests/optimize/test_optimize_float64.py covers float64).
    float64 = computes_in_float64(_source_graph(access, source))
    # 67 penguin validation rows: one row is 1.5 accuracy points.
    options = OptimizeOptions(
        quantize=method, min_accuracy=0.8, max_accuracy_drop=0.03, benchmark=QUICK
    )

    result = optimize_version(access, source.ref, options)

    assert result.passed, result.failures
    assert result.evaluation == f"{source.name}@validation.csv"
    assert result.label_agreement >= 0.95
    if method != "none":
        assert result.after.size_bytes < result.before.size_bytes
        assert "MatMul" in result.quantized_operators
        assert (result.narrowed is not None) == float64
    if result.narrowed is not None:
        assert result.narrowed.label_agreement >= 0.98
        assert result.narrowed.max_abs_diff < 1e-3
        assert result.to_dict()["narrowed"]["from"] == "FP64"
    child = register_optimized(access, result)
    assert child.parent == source.ref
    assert child.signature == source.signature  # the FP64 inputs a client sends are kept
    assert _served_accuracy(access, child) == child.metrics["accuracy"] == result.after.accuracy


def test_a_tree_ensemble_is_refused_in_one_line_naming_its_operators(access: Services) -> None:
    source = _train(access, "penguins", "random_forest")
    for method in ("dynamic-int8", "static-int8", "fp16"):
        options = OptimizeOptions(quantize=method, benchmark=QUICK)
        refusal = rf"{method} cannot shrink this model: none of its operators .*TreeEnsemble"
        with pytest.raises(InvalidInput, match=refusal):
            optimize_version(access, source.ref, options)
    assert [v.version for v in access.registry.list_versions(source.name)] == [1]
