"""IrisModel: a scikit-learn classifier kept in its artifacts folder (``model.joblib``),
answering ``label`` and ``probabilities``: a wrapper of a trained model, as MLflow's
pyfunc would hold one."""

from pathlib import Path

import joblib
import numpy as np


class IrisModel:
    def load(self, artifacts_dir: Path) -> None:
        self.estimator = joblib.load(artifacts_dir / "model.joblib")

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        features = inputs["input"]
        return {
            "label": self.estimator.predict(features),
            "probabilities": self.estimator.predict_proba(features),  # float64: cast to FP32
        }
