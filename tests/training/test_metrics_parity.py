"""The pipeline's validation figures equal scikit-learn's on the same predictions."""

import numpy as np
import pytest
from sklearn import metrics as skm

from servewell.stats import ClassificationMetrics
from servewell.training.data import dataset_from_frame
from servewell.training.run import train_pipeline


def test_validation_metrics_equal_scikit_learn(frame, make_config) -> None:
    result = train_pipeline(dataset_from_frame(frame, "sessions"), make_config())
    metrics = result.metrics
    assert isinstance(metrics, ClassificationMetrics)
    truth = result.validation_truth
    predicted = result.validation_predictions.label
    proba = result.validation_predictions.probabilities
    assert metrics.accuracy == pytest.approx(skm.accuracy_score(truth, predicted))
    assert metrics.macro_f1 == pytest.approx(skm.f1_score(truth, predicted, average="macro"))
    assert metrics.headline()["recall"] == pytest.approx(skm.recall_score(truth, predicted))
    assert metrics.roc_auc == pytest.approx(skm.roc_auc_score(truth, proba[:, 1]))
    assert metrics.pr_auc == pytest.approx(skm.average_precision_score(truth, proba[:, 1]))
    assert metrics.log_loss == pytest.approx(skm.log_loss(truth, y_proba=proba))
    assert np.array_equal(metrics.confusion, skm.confusion_matrix(truth, predicted))
