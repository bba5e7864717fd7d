"""A model trained by the pipeline (so its version keeps a reference profile), served by
a real server whose prediction log writes to the registry, and labels sent back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from servewell.bootstrap import Services
from servewell.core.ref import ModelRef
from servewell.http import create_app
from servewell.registry.prediction_store import open_prediction_store
from servewell.registry.predictions import LoggedPrediction, PredictionRow, SqlPredictionStore
from servewell.registry.sketches import SketchStore
from servewell.serving.prediction_reading import Readings
from servewell.serving.prediction_sketches import PredictionSketcher
from servewell.settings import AuthSettings, CacheSettings, ServerSettings, Settings
from servewell.stats.quantile import RELATIVE_ERROR
from servewell.training.data import dataset_from_frame
from servewell.training.run import run_pipeline
from serving_models import serve_in_thread
from training_tables import fast_config

MODEL = "loans"
WAIT_S = 60.0


def loans(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Two measurements and a plan; ``shift`` moves ``amount`` by that many standard
    deviations (``income`` and ``plan`` stay as they were)."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(0, 1, rows)
    income = rng.normal(0, 1, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows, p=[0.5, 0.3, 0.2])
    score = 1.5 * amount - income + 0.8 * (plan == "basic") + rng.logistic(0, 0.5, rows)
    return pd.DataFrame(
        {"amount": amount + shift, "income": income, "plan": plan, "late": (score > 0).astype(int)}
    )


def train(services: Services, rows: int = 3000) -> int:
    """``loans`` trained and registered with its profile; its version number."""
    config = fast_config(name=MODEL, target="late", estimator={"kind": "logistic"}, gate={})
    run_pipeline(dataset_from_frame(loans(rows, seed=0), MODEL), config, services)
    return services.registry.resolve(ModelRef.parse(MODEL)).version


def serving_settings(services: Services, models: dict[str, Any] | None = None) -> Settings:
    return Settings(
        models=models or {},
        home=services.settings.home,
        database_url=services.settings.database_url,
        auth=AuthSettings(enabled=False),
        cache=CacheSettings(enabled=False),
        server=ServerSettings(models=[MODEL]),
        monitoring={"flush_interval_s": 0.05},
    )


@contextmanager
def serving(services: Services, models: dict[str, Any] | None = None) -> Iterator[str]:
    settings = serving_settings(services, models)
    with serve_in_thread(create_app(settings, services)) as server:
        yield server.url


def predict(url: str, frame: pd.DataFrame, prefix: str, batch: int = 1) -> None:
    """Every row of ``frame`` (without its target), ``batch`` rows a request, each
    request's id ``<prefix>-<first row>``."""
    features = frame.drop(columns=["late"]).to_dict(orient="records")
    with httpx.Client(timeout=30) as client:
        for start in range(0, len(features), batch):
            body = {"instances": features[start : start + batch]}
            answer = client.post(
                f"{url}/v1/models/{MODEL}:predict",
                json=body,
                headers={"x-request-id": f"{prefix}-{start}"},
            )
            assert answer.status_code == 200, answer.text


def wait_for_rows(services: Services, count: int) -> list[LoggedPrediction]:
    """The logged rows, once ``count`` are written and sketched (the flush thread saves
    the window sketches just after the rows)."""
    store, sketches = SqlPredictionStore(services.registry), SketchStore(services.registry)
    deadline = time.monotonic() + WAIT_S
    while True:
        rows = store.rows(MODEL)
        sketched = sum(row.bucket.logged for row in sketches.window(MODEL))
        if min(len(rows), sketched) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def label(services: Services, frame: pd.DataFrame, prefix: str) -> Any:
    """The true label of every row sent one a request."""
    pairs = [(f"{prefix}-{i}", int(value)) for i, value in enumerate(frame["late"])]
    return SqlPredictionStore(services.registry).label(MODEL, pairs)


def write_logged(services: Services, rows: list[PredictionRow], bucket_s: float = 60.0) -> None:
    """``rows`` into the log's store and its window sketches, as a server's flush thread
    writes them (without serving them)."""
    store = open_prediction_store(services)
    store.write(rows)
    store.close()
    sketcher = PredictionSketcher(
        SketchStore(services.registry), Readings(services).of, bucket_s, retention_s=86400 * 30
    )
    sketcher.write(rows)


def logged_rows(frame: pd.DataFrame, end: float, span_s: float) -> list[PredictionRow]:
    """One logged row per frame row over ``span_s`` before ``end``; every tenth a cache hit."""
    at = np.linspace(end - span_s, end - 1, len(frame))
    rows = []
    for i, (amount, income, plan, late) in enumerate(frame.itertuples(index=False)):
        cached = i % 10 == 9
        rows.append(
            PredictionRow(
                float(at[i]),
                f"r{i}",
                MODEL,
                1,
                None,
                None,
                0.5 + (i * 7919 % 1000) / 10,
                cached,
                None if cached else json.dumps({"label": [int(late)]}),
                None
                if cached
                else json.dumps({"amount": [amount], "income": [income], "plan": [plan]}),
            )
        )
    return rows


def window_figures(report: Any) -> dict[str, Any]:
    [group] = report.groups
    return group.to_dict()  # type: ignore[no-any-return]


def assert_same_figures(sketched: dict[str, Any], rescanned: dict[str, Any]) -> None:
    for key in ("logged", "cached", "labelled", "unscored", "quality", "label_coverage"):
        assert sketched[key] == rescanned[key], key
    for key, value in rescanned["latency_ms"].items():
        assert sketched["latency_ms"][key] == pytest.approx(value, rel=RELATIVE_ERROR), key
    pairs = [*zip(sketched["drift"]["features"], rescanned["drift"]["features"], strict=True)]
    pairs.append((sketched["drift"]["prediction"], rescanned["drift"]["prediction"]))
    for mine, theirs in pairs:
        assert (mine["name"], mine["rows"], mine["missing"]) == (
            theirs["name"],
            theirs["rows"],
            theirs["missing"],
        )
        for a, b in zip(mine["tests"], theirs["tests"], strict=True):
            assert a["test"] == b["test"]
            assert a["statistic"] == pytest.approx(b["statistic"], abs=1e-6), a["test"]
            assert a["drift"] == b["drift"]
    mine, theirs = (found["drift"]["prediction_distribution"] for found in (sketched, rescanned))
    assert mine["bins"] == theirs["bins"]
    assert mine["window"] == pytest.approx(theirs["window"])
