"""The registry of the Live, Monitoring, Jobs and Checks browser tests: the dashboard
home (iris, the adder, keys), plus a Python model that sleeps 100 ms a call (its jobs
take seconds) and ``loans``, trained by the pipeline so its version keeps a reference
profile; and the settings file the server reads (``loans`` logs its inputs in full)."""

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
    from servewell.core.ref import ModelRef
    from servewell.settings import Settings

    keys = build_dashboard_home(home, classifier, iris_x)
    services = build_services(Settings(home=home))
    try:
        register_python(services, "slow", "slow", artifacts=PYTHON_MODELS / "slow_artifacts")
        services.registry.set_alias("slow", "production", 1, by="user:test")
        monitored.train(services, rows=1000)
        services.registry.resolve(ModelRef.parse(monitored.MODEL))
    finally:
        services.close()
    (home.parent / "servewell.yaml").write_text(SETTINGS_YAML, encoding="utf-8")
    return keys
