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


def accounts(rows: int = 4000, positive_share: float = 0.03, seed: int = 0) -> pd.DataFrame:
    """Customer accounts with a rare outcome (``defaulted``, ``positive_share`` of rows)
    that the features predict only in part, as real risk data does."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    balance = rng.lognormal(8, 1, rows).round(2)
    plan = rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2])
    visits = rng.poisson(5, rows)
    risk = (
        -0.04 * (age - 50) + 0.6 * np.log(balance) + 0.9 * (plan == "basic") - 0.15 * visits
    ) + rng.logistic(scale=0.4, size=rows)
    defaulted = (risk > np.quantile(risk, 1 - positive_share)).astype(int)
    return pd.DataFrame(
        {"age": age, "balance": balance, "plan": plan, "visits": visits, "defaulted": defaulted}
    )


def species(rows: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Three balanced classes, told apart by overlapping measurements and a habitat."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, rows)
    return pd.DataFrame(
        {
            "length": rng.normal(10 + 2 * kind, 2.0, rows).round(3),
            "width": rng.normal(5 + kind * (2 - kind), 1.5, rows).round(3),
            "habitat": np.where(
                rng.random(rows) < 0.6, np.array(["reef", "shore", "deep"])[kind], "shore"
            ),
            "kind": np.array(["a", "b", "c"])[kind],
        }
    )


def noisy_copy(values: pd.Series, share: float = 0.02, seed: int = 0) -> pd.Series:
    """``values`` with ``share`` of the rows given another of its values."""
    rng = np.random.default_rng(seed)
    levels = np.array(sorted(values.unique()))
    codes = np.searchsorted(levels, values.to_numpy())
    shift = rng.integers(1, len(levels), len(values))
    flipped = np.where(rng.random(len(values)) < share, (codes + shift) % len(levels), codes)
    return pd.Series(levels[flipped], index=values.index)


def in_target_order(values: pd.Series, seed: int = 0) -> pd.Series:
    """Account numbers 1..n handed out in the order of ``values`` (ties in random order)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(values)), values.to_numpy()))
    numbers = np.empty(len(values), dtype=np.int64)
    numbers[order] = np.arange(1, len(values) + 1)
    return pd.Series(numbers, index=values.index)


def plain(rows: int = 5000, seed: int = 0) -> pd.DataFrame:
    """An ordinary table: a dozen measurements and a region, the target a non-linear mix
    of a few of them (an MLP keeps improving its loss on it for hundreds of epochs)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 12)), columns=[f"x{i}" for i in range(12)])
    frame["region"] = rng.choice(list("abcdef"), rows)
    signal = (
        frame["x0"] * frame["x1"]
        + np.sin(2 * frame["x2"])
        + 0.5 * frame["x3"] ** 2
        - (frame["region"] == "a")
    )
    frame["y"] = (signal + rng.normal(0, 0.8, rows) > 0.3).astype(int)
    return frame


def grades(rows: int = 3000, classes: int = 8, seed: int = 0) -> pd.DataFrame:
    """``classes`` balanced grades that a noisy test score only roughly tells apart."""
    rng = np.random.default_rng(seed)
    grade = rng.integers(0, classes, rows)
    return pd.DataFrame(
        {
            "score": (grade + rng.normal(0, 2, rows)).round(3),
            "hours": rng.normal(10, 3, rows).round(3),
            "grade": np.array([f"g{g}" for g in grade], dtype=object),
        }
    )
