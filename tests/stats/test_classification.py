import numpy as np
import pytest
from sklearn import metrics as skm

from servewell.stats import classification_metrics, confusion_matrix, majority_baseline


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 300)
    score = np.clip(y_true * 0.3 + rng.normal(0.35, 0.25, 300), 0, 1)
    score[:40] = np.round(score[:40], 1)  # ties, which ROC/PR must handle like sklearn
    return y_true, (score >= 0.5).astype(int), np.column_stack([1 - score, score])


def test_binary_figures_equal_scikit_learn(binary) -> None:
    y_true, y_pred, proba = binary
    result = classification_metrics(y_true, y_pred, labels=[0, 1], probabilities=proba)

    assert result.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1], zero_division=0
    )
    for i, label in enumerate(["0", "1"]):
        assert result.per_class[label].precision == pytest.approx(precision[i])
        assert result.per_class[label].recall == pytest.approx(recall[i])
        assert result.per_class[label].f1 == pytest.approx(f1[i])
        assert result.per_class[label].support == support[i]
    assert result.macro_f1 == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert result.macro_precision == pytest.approx(
        skm.precision_score(y_true, y_pred, average="macro")
    )
    assert result.macro_recall == pytest.approx(skm.recall_score(y_true, y_pred, average="macro"))
    assert result.roc_auc == pytest.approx(skm.roc_auc_score(y_true, proba[:, 1]))
    assert result.pr_auc == pytest.approx(skm.average_precision_score(y_true, proba[:, 1]))
    assert result.log_loss == pytest.approx(skm.log_loss(y_true, y_proba=proba))
    assert np.array_equal(result.confusion, skm.confusion_matrix(y_true, y_pred))
    headline = result.headline()
    assert headline["recall"] == pytest.approx(skm.recall_score(y_true, y_pred))
    assert headline["precision"] == pytest.approx(skm.precision_score(y_true, y_pred))


def test_curves_match_scikit_learn(binary) -> None:
    y_true, y_pred, proba = binary
    result = classification_metrics(y_true, y_pred, labels=[0, 1], probabilities=proba)
    fpr, tpr, _ = skm.roc_curve(y_true, proba[:, 1], drop_intermediate=False)
    assert result.roc_curve is not None
    assert np.allclose(result.roc_curve.x, fpr)
    assert np.allclose(result.roc_curve.y, tpr)
    precision, recall, _ = skm.precision_recall_curve(y_true, proba[:, 1])
    assert result.pr_curve is not None
    assert np.allclose(result.pr_curve.x, recall[::-1])
    assert np.allclose(result.pr_curve.y, precision[::-1])


def test_string_labels_with_a_chosen_positive_class() -> None:
    y_true = np.array(["fraud", "ok", "ok", "fraud", "ok", "ok", "ok", "fraud"])
    y_pred = np.array(["fraud", "ok", "fraud", "ok", "ok", "ok", "ok", "fraud"])
    score = np.array([0.9, 0.2, 0.6, 0.4, 0.1, 0.3, 0.2, 0.8])
    proba = np.column_stack([score, 1 - score])  # columns in label order: fraud, ok
    result = classification_metrics(
        y_true, y_pred, labels=["fraud", "ok"], probabilities=proba, positive_label="fraud"
    )
    assert result.headline()["recall"] == pytest.approx(
        skm.recall_score(y_true, y_pred, pos_label="fraud")
    )
    assert result.roc_auc == pytest.approx(skm.roc_auc_score(y_true == "fraud", score))
    assert result.pr_auc == pytest.approx(skm.average_precision_score(y_true == "fraud", score))


def test_multiclass_figures_equal_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 3, 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 3, 200))
    y_pred[y_pred == 2] = 1  # class 2 is never predicted: precision is 0, not an error
    raw = rng.random((200, 3))
    proba = raw / raw.sum(axis=1, keepdims=True)
    result = classification_metrics(y_true, y_pred, labels=[0, 1, 2], probabilities=proba)
    assert result.macro_f1 == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro", zero_division=0)
    )
    assert result.macro_precision == pytest.approx(
        skm.precision_score(y_true, y_pred, average="macro", zero_division=0)
    )
    assert result.log_loss == pytest.approx(skm.log_loss(y_true, y_proba=proba))
    assert result.roc_auc == pytest.approx(
        skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro")
    )
    assert result.roc_auc_weighted == pytest.approx(
        skm.roc_auc_score(y_true, proba, multi_class="ovr", average="weighted")
    )
    assert result.brier_score == pytest.approx(skm.brier_score_loss(y_true, proba))
    assert result.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert result.pr_auc is None
    assert result.positive_label is None


def test_multiclass_roc_auc_on_a_real_model() -> None:
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_wine(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01)).fit(x_train, y_train)
    proba = model.predict_proba(x_val)
    result = classification_metrics(
        y_val, model.predict(x_val), labels=[0, 1, 2], probabilities=proba
    )
    for average, value in (("macro", result.roc_auc), ("weighted", result.roc_auc_weighted)):
        assert value == pytest.approx(
            skm.roc_auc_score(y_val, proba, multi_class="ovr", average=average)
        )
    assert result.brier_score == pytest.approx(skm.brier_score_loss(y_val, proba))


def test_binary_calibration_equals_scikit_learn(binary) -> None:
    from sklearn.calibration import calibration_curve

    y_true, y_pred, proba = binary
    result = classification_metrics(y_true, y_pred, labels=[0, 1], probabilities=proba)
    assert result.brier_score == pytest.approx(skm.brier_score_loss(y_true, proba[:, 1]))
    observed, predicted = calibration_curve(y_true, proba[:, 1], n_bins=10)
    assert result.calibration_curve is not None
    assert np.allclose(result.calibration_curve.x, predicted)
    assert np.allclose(result.calibration_curve.y, observed)
    assert result.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert result.prevalence == pytest.approx(np.mean(y_true == 1))


def test_multiclass_calibration_is_of_the_top_class() -> None:
    y_true = np.array([0, 1, 2, 2])
    proba = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1], [0.2, 0.2, 0.6]])
    result = classification_metrics(
        y_true, proba.argmax(axis=1), labels=[0, 1, 2], probabilities=proba
    )
    assert result.calibration_curve is not None
    # bins [0.6, 0.7): two rows, one right; [0.8, 0.9): right; [0.9, 1]: right
    assert result.calibration_curve.x == pytest.approx((0.6, 0.8, 0.9))
    assert result.calibration_curve.y == pytest.approx((0.5, 1.0, 1.0))


def test_confusion_matrix_counts_pairs() -> None:
    matrix = confusion_matrix(np.array(["a", "b", "b"]), np.array(["a", "a", "b"]), ["a", "b"])
    assert matrix.tolist() == [[1, 0], [1, 1]]


def test_majority_baseline() -> None:
    assert majority_baseline(np.array([1, 0, 0, 0])) == (0, 0.75)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="3 true labels but 2 predictions"):
        classification_metrics(np.array([0, 1, 1]), np.array([0, 1]))
