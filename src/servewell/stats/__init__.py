"""Pure statistics: classification and regression metrics, feature association, profiles.

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
from servewell.stats.profile import build_profile, categorical_profile, numeric_profile
from servewell.stats.ranking import Curve
from servewell.stats.regression import RegressionMetrics, regression_metrics

__all__ = [
    "Association",
    "ClassMetrics",
    "ClassificationMetrics",
    "Curve",
    "RegressionMetrics",
    "association",
    "build_profile",
    "categorical_profile",
    "classification_metrics",
    "confusion_matrix",
    "majority_baseline",
    "numeric_profile",
    "regression_metrics",
]
