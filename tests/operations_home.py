"""The registry of the Live, Monitoring, Jobs and Checks browser tests: the dashboard
home (iris, the adder, keys), plus a Python model that sleeps 100 ms a call (its jobs
take seconds) and ``loans``, trained by the pipeline so its version keeps a reference
profile; and the settings file the server reads (``loans`` logs its inputs in full and
an alert rule watches its ``amount`` drifting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import monitored_models as monitored
from dashboard_home import build_dashboard_home
from serving_models import PYTHON_MODELS, register_python

SETTINGS_YAML = """\
monitoring:
  flush_interval_s: 0.2
  evaluation_interval_s: 0.5
  alerts:
    - {name: loans-amount-drift, model: loans, metric: "drift_psi[amount]", op: ">",
       threshold: 0.2, window: 1h}
jobs:
  chunk_rows: 5
models:
  loans:
    monitoring:
      log_inputs: full
  slow:
    batching:
      max_batch_size: 5
"""


def build_operations_home(home: Path, classifier: Any, iris_x: np.ndarray) -> dict[str, str]:
    """Build the registry in ``home`` and ``servewell.yaml`` beside it (the server's
    working directory); the API keys' secrets by name (``admin``, ``viewer``, ``caller``)."""
    from servewell.bootstrap import build_services
    from servewell.settings import Settings

    keys = build_dashboard_home(home, classifier, iris_x)
    services = build_services(Settings(home=home))
    try:
        register_python(services, "slow", "slow", artifacts=PYTHON_MODELS / "slow_artifacts")
        services.registry.set_alias("slow", "production", 1, by="user:test")
        version = monitored.train(services, rows=1000)
        services.registry.set_alias(monitored.MODEL, "production", version, by="user:test")
    finally:
        services.close()
    (home.parent / "servewell.yaml").write_text(SETTINGS_YAML, encoding="utf-8")
    return keys
