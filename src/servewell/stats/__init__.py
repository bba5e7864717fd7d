"""Pure statistics: classification and regression metrics, feature association, profiles,
sketches and drift tests.

Numbers in, numbers out: nothing here knows of models, files or the registry.
"""

from servewell.stats.association import Association, association
from servewell.stats.classification import (
    ClassificationMetrics,
    ClassMetrics,
    classification_metrics,
    confusion_matrix,
    majority_baseline,
)
from servewell.stats.drift import DriftTest, FeatureDrift, Thresholds
from servewell.stats.profile import build_profile, categorical_profile, numeric_profile
from servewell.stats.ranking import Curve
from servewell.stats.reference import CategoricalReference, NumericReference, references
from servewell.stats.regression import RegressionMetrics, regression_metrics
from servewell.stats.sketch import CategoricalSketch, NumericSketch

__all__ = [
    "Association",
    "CategoricalReference",
    "CategoricalSketch",
    "ClassMetrics",
    "ClassificationMetrics",
    "Curve",
    "DriftTest",
    "FeatureDrift",
    "NumericReference",
    "NumericSketch",
    "RegressionMetrics",
    "Thresholds",
    "association",
    "build_profile",
    "categorical_profile",
    "classification_metrics",
    "confusion_matrix",
    "majority_baseline",
    "numeric_profile",
    "references",
    "regression_metrics",
]
