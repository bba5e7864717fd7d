"""The default estimator trains ordinary tables; parameters of another estimator are
refused before any work, or dropped when the command line picks another estimator."""

import pytest

from servewell.errors import InvalidConfig
from servewell.training.config import PipelineConfig, parse_config
from servewell.training.data import dataset_from_frame
from servewell.training.progress import SilentProgress
from servewell.training.run import train_pipeline
from training_tables import accounts, plain


def test_the_default_trains_a_plain_table_without_convergence_trouble() -> None:
    """The MLP, the default before, refused this table: not converged in 200 epochs."""
    config = PipelineConfig().with_overrides(target="y")
    result = train_pipeline(dataset_from_frame(plain(5000), "plain"), config)
    assert config.estimator.kind == "gradient_boosting"
    assert type(result.model.steps[-1][1]).__name__ == "GradientBoostingClassifier"
    assert result.trace.converged is None  # boosting stages, not a loss to converge
    assert "convergence" not in {check.name for check in result.checks}
    assert result.trace.epochs  # one point per boosting stage, for the training curve
    assert result.passed


class _Stages(SilentProgress):
    def __init__(self) -> None:
        self.started: list[str] = []

    def stage_started(self, stage: str) -> None:
        self.started.append(stage)


def test_another_estimators_parameter_is_refused_before_cleaning() -> None:
    config = parse_config(
        {
            "target": "defaulted",
            "estimator": {"kind": "random_forest", "params": {"hidden_layer_sizes": [32]}},
        }
    )
    stages = _Stages()
    with pytest.raises(InvalidConfig) as refused:
        train_pipeline(dataset_from_frame(accounts(300), "t"), config, stages)
    message = str(refused.value)
    assert "'hidden_layer_sizes' is not a parameter of RandomForestClassifier" in message
    assert "n_estimators" in message  # what it does take
    assert "\n" not in message
    assert stages.started == ["load"]


def test_choosing_another_estimator_drops_the_files_parameters() -> None:
    written = parse_config(
        {"estimator": {"kind": "mlp", "params": {"hidden_layer_sizes": [32]}, "max_epochs": 50}}
    )
    other = written.with_overrides(estimator="random_forest")
    assert other.estimator.kind == "random_forest"
    assert other.estimator.params == {}
    assert other.estimator.max_epochs == 50  # the rest of the section stays
    same = written.with_overrides(estimator="mlp")
    assert same.estimator.params == {"hidden_layer_sizes": [32]}
