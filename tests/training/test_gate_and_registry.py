"""The gate refuses and registers nothing; a registered model serves what training predicted."""

import json

import numpy as np
import pytest

from servewell.core.ref import ModelRef
from servewell.errors import GateFailed, NotFound
from servewell.serving.loading import open_runtime
from servewell.training.data import dataset_from_frame
from servewell.training.evaluate import evaluate_runtime, predict
from servewell.training.run import run_pipeline, train_pipeline
from servewell.training.signature import to_inputs


def test_a_failed_gate_registers_nothing(frame, sqlite_services, make_config) -> None:
    config = make_config(gate={"min_accuracy": 0.999, "max_p99_ms": 100_000})
    with pytest.raises(GateFailed, match=r"accuracy 0\.\d+ is not ≥ 0\.999 \(short by"):
        run_pipeline(dataset_from_frame(frame, "t"), config, sqlite_services)
    with pytest.raises(NotFound):
        sqlite_services.registry.resolve(ModelRef("clicks"))


def test_the_served_model_predicts_like_the_trained_pipeline(
    frame, sqlite_services, make_config
) -> None:
    config = make_config(
        features={
            "derived": [
                {"name": "click_rate", "ratio": ["clicks", "impressions"]},
                {
                    "name": "time_since_last_click",
                    "difference": ["timestamp", "last_click_at"],
                    "unit": "h",
                },
                {"name": "visit", "datetime": "timestamp", "parts": ["hour", "weekday"]},
            ]
        },
        register={"alias": "production"},
        gate={"min_accuracy": 0.6},
    )
    result = run_pipeline(dataset_from_frame(frame, "t"), config, sqlite_services)
    version = sqlite_services.registry.resolve(ModelRef.parse("clicks@production"))
    assert version.version == result.version.version
    assert {"profile.json", "model_card.md", "report.html", "report.json"} <= {
        a.role for a in version.artifacts
    }
    assert version.params["data"]["rows"] == len(frame)
    assert [spec.name for spec in version.signature.inputs] == [
        "timestamp",
        "last_click_at",
        "device",
        "impressions",
        "clicks",
    ]  # raw columns, not the model's derived ones

    rows = frame.drop(columns="clicked").head(50)
    runtime = open_runtime(sqlite_services, version)
    served = runtime.predict(to_inputs(rows, version.signature))
    local = predict(result.model, rows, "classification")
    assert np.array_equal(served["label"], local.label)
    assert np.allclose(served["probabilities"], local.probabilities, atol=1e-6)

    evaluation = evaluate_runtime(runtime, frame, "clicked", positive_label=1)
    assert evaluation.rows == len(frame)
    assert 0.6 < evaluation.metrics.accuracy <= 1.0
    runtime.close()


def test_profile_has_every_input_and_the_predictions(frame, make_config) -> None:
    result = train_pipeline(dataset_from_frame(frame, "t"), make_config())
    profile = json.loads(json.dumps(result.profile))
    assert set(profile["features"]) == {
        "timestamp",
        "last_click_at",
        "device",
        "impressions",
        "clicks",
    }
    assert profile["features"]["device"]["kind"] == "categorical"
    assert "quantiles" in profile["features"]["clicks"]
    assert set(profile["prediction"]["frequencies"]) <= {"0", "1"}


def test_min_roc_auc_gates_a_multiclass_target_by_its_one_vs_rest_macro_average() -> None:
    from servewell.errors import InvalidConfig
    from servewell.training.config import parse_config
    from training_tables import species

    def config(gate: dict[str, object]):
        return parse_config(
            {"target": "kind", "estimator": {"kind": "logistic"}, "gate": gate,
             "checks": {"latency_rows": 10}}
        )  # fmt: skip

    data = dataset_from_frame(species(600), "species")
    result = train_pipeline(data, config({"min_roc_auc": 0.6}))
    assert result.passed
    assert result.gate[0].actual == result.metrics.roc_auc
    assert "roc_auc_weighted" in result.metrics.headline()
    missed = train_pipeline(data, config({"min_roc_auc": 0.9999}))
    assert not missed.passed
    assert "roc_auc 0." in missed.failures[0]
    with pytest.raises(InvalidConfig, match=r"gate\.min_pr_auc applies to binary targets"):
        train_pipeline(data, config({"min_pr_auc": 0.5}))
