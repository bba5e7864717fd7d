"""Small tables built to have known defects, and a fast pipeline configuration (the
fixtures the training, reports and optimize tests share)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from servewell.training.config import PipelineConfig, parse_config


def sessions(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Click-like data whose target follows its features (learnable in a few epochs)."""
    rng = np.random.default_rng(seed)
    impressions = rng.integers(1, 50, rows)
    clicks = rng.binomial(impressions, rng.uniform(0, 0.3, rows))
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.uniform(0, 30, rows), unit="D")
    last = start - pd.to_timedelta(rng.exponential(24, rows), unit="h")
    device = rng.choice(["mobile", "desktop"], rows)
    score = 8 * clicks / impressions + 0.8 * (device == "mobile") - 1.5
    return pd.DataFrame(
        {
            "timestamp": start.strftime("%Y-%m-%dT%H:%M:%S"),
            "last_click_at": last.strftime("%Y-%m-%dT%H:%M:%S"),
            "device": device,
            "impressions": impressions,
            "clicks": clicks.astype(float),
            "clicked": (score + rng.normal(0, 0.5, rows) > 0).astype(int),
        }
    )


def fast_config(**overrides: object) -> PipelineConfig:
    data: dict[str, object] = {
        "name": "clicks",
        "target": "clicked",
        "estimator": {
            "kind": "mlp",
            "params": {"hidden_layer_sizes": [8]},
            "max_epochs": 40,
            "tol": 0.001,
            "on_no_convergence": "warn",
        },
        "checks": {"latency_rows": 10},
    }
    data.update(overrides)
    return parse_config(data)


@pytest.fixture
def frame() -> pd.DataFrame:
    return sessions()


@pytest.fixture
def csv_file(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "sessions.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def make_config() -> Callable[..., PipelineConfig]:
    """A fast pipeline configuration, with top-level keys overridden."""
    return fast_config


def penguins() -> pd.DataFrame:
    """palmerpenguins' bundled table (shipped in the package, nothing downloaded): 344
    penguins of 3 species, 2 rows without measurements, 11 without a sex."""
    from palmerpenguins import load_penguins

    return load_penguins()


def penguins_config(missing: str = "impute") -> PipelineConfig:
    """Species from the measurements, island, sex and year; missing values ``missing``."""
    return fast_config(
        name="penguins",
        target="species",
        estimator={"kind": "logistic"},
        cleaning={"missing": missing, "duplicates": "keep"},
        gate={},
    )
