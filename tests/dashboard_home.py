"""A registry for the dashboard tests: iris v1 and v2 (v2's parent is v1, it carries
metrics, a training report and a model card), ``production`` moved from v1 to v2 (so
there is a rollback to make), a split of iris's traffic (production 90 %, v1 10 %), the
adder, and API keys of each kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from servewell.core.ref import ModelRef
from servewell.core.traffic import Arm
from serving_models import IRIS_FEATURES, register_adder

REPORT_HTML = (
    b"<!doctype html><html lang='en'><head><title>iris report</title></head>"
    b"<body><h1>Training report</h1></body></html>"
)
MODEL_CARD = b"# iris\n\nA classifier of iris flowers, for the dashboard tests.\n"


def build_dashboard_home(home: Path, classifier: Any, iris_x: np.ndarray) -> dict[str, str]:
    """Build the registry in ``home``; the API keys' secrets, by name: ``admin``,
    ``viewer``, ``caller`` (predict only)."""
    from servewell.bootstrap import build_services
    from servewell.registration.register import RegisterOptions, register_estimator
    from servewell.registry.keys import ApiKeyStore
    from servewell.registry.traffic import TrafficStore
    from servewell.runtime.sklearn import signature_from_estimator
    from servewell.settings import Settings

    services = build_services(Settings(home=home))
    try:
        signature = signature_from_estimator(classifier).model_copy(
            update={"feature_names": IRIS_FEATURES}
        )
        sample = {"input": iris_x}
        first = RegisterOptions(
            signature=signature, alias="production", sample=sample, metrics={"accuracy": 0.95}
        )
        register_estimator(services, "iris", classifier, options=first)
        second = RegisterOptions(
            signature=signature,
            sample=sample,
            parent=ModelRef.parse("iris@1"),
            metrics={"accuracy": 0.97, "macro_f1": 0.969, "p50_ms": 0.21, "p99_ms": 0.9},
            attachments={"report.html": REPORT_HTML, "model_card.md": MODEL_CARD},
        )
        register_estimator(services, "iris", classifier, options=second)
        services.registry.set_alias("iris", "production", 2, by="user:test")
        split = [Arm("production", 90), Arm("1", 10)]
        TrafficStore(services.registry).set_split("iris", split, by="user:test")
        register_adder(services, home.parent)
        store = ApiKeyStore(services.registry)
        return {
            "admin": store.create("admin", ("admin",))[1],
            "viewer": store.create("viewer", ("viewer",))[1],
            "caller": store.create("caller", ("predict",))[1],
        }
    finally:
        services.close()
