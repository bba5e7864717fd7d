"""Drift of a 1-day window of 1M logged predictions over 30 features, as ``servewell
monitor NAME --window 1d`` answers it from the stored window sketches, and by a rescan
of the logged rows with scipy, side by side in one run (issue #20).

Run: ``PYTHONPATH=src python bench/monitor.py [--rows 1000000] [--database-url URL]``.
Registers a regressor on 30 numeric features (a matrix input) with its training
reference profile (20k rows), then logs the day's predictions, a row a request spread
evenly over the last 24 hours, through the prediction log's own write path in batches
of 10k: rows by ``RowBuilder.logged``, ``to_rows`` and ``SqlPredictionStore.write``, sketches by
``PredictionSketcher.write`` (one-minute buckets), then the hourly compaction a server
runs. Six features are shifted by +0.5 sd. Then, timed: ``monitor`` over ``1d`` (the
median of three calls); and the rescan: every row read back (``SqlPredictionStore.scan``),
each feature's ``scipy.stats.ks_2samp`` against the training values and PSI
(Evidently's formula) on the same bins. Prints both times and the largest difference
of each statistic between the two ways.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from drift import evidently_psi
from scipy import stats
from sklearn.linear_model import LinearRegression

from servewell.bootstrap import Services, build_services
from servewell.core.inference import InferRequest, InferResponse
from servewell.core.ref import ModelRef
from servewell.monitoring.run import monitor
from servewell.monitoring.window import Span
from servewell.observability import RequestRecord
from servewell.registration.register import RegisterOptions, register_estimator
from servewell.registry.attachments import PROFILE_ROLE
from servewell.registry.predictions import SqlPredictionStore
from servewell.registry.sketches import SketchStore
from servewell.serving.prediction_reading import Readings
from servewell.serving.prediction_rows import Answer, RowBuilder
from servewell.serving.prediction_sketches import PredictionSketcher
from servewell.settings import Settings
from servewell.stats import build_profile

MODEL = "bench"
FEATURES = [f"f{i}" for i in range(30)]
SHIFTED = FEATURES[:6]
TRAINING_ROWS = 20_000
BATCH_ROWS = 10_000
DAY_S = 86_400
MONITOR_RUNS = 3


def _features(rng: np.random.Generator, rows: int, shift: bool) -> Any:
    values = rng.normal(50, 10, (rows, len(FEATURES)))
    values[:, 10:20] = rng.lognormal(3, 0.8, (rows, 10))
    if shift:
        values[:, : len(SHIFTED)] += 5.0  # +0.5 sd of the normal features
    return values


def _register(services: Services) -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    training = _features(rng, TRAINING_ROWS, shift=False)
    frame = pd.DataFrame(training, columns=FEATURES)
    model = LinearRegression().fit(frame, training @ rng.normal(0, 1, len(FEATURES)))
    predictions = model.predict(frame)
    profile = build_profile(
        {name: training[:, i] for i, name in enumerate(FEATURES)},
        dict.fromkeys(FEATURES, "numeric"),
        predictions=predictions,
        prediction_kind="numeric",
    )
    options = RegisterOptions(
        convert=False, attachments={PROFILE_ROLE: json.dumps(profile).encode()}
    )
    register_estimator(services, MODEL, model, options=options)
    return model, training


def _log_day(services: Services, model: Any, rows: int, now: float) -> tuple[float, float]:
    """Log ``rows`` predictions over the last day through the log's write path: the
    seconds it took, and those of them the sketches took."""
    version = services.registry.resolve(ModelRef.parse(MODEL))
    builder = RowBuilder(lambda _name: None)
    store = SqlPredictionStore(services.registry)
    sketcher = PredictionSketcher(
        SketchStore(services.registry), Readings(services).of, 60.0, 30 * DAY_S, clock=lambda: now
    )
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    sketch_s = 0.0
    for start in range(0, rows, BATCH_ROWS):
        size = min(BATCH_ROWS, rows - start)
        values = _features(rng, size, shift=True).astype(np.float32)
        predicted = model.coef_ @ values.T.astype(np.float64) + model.intercept_
        at = now - DAY_S + (start + np.arange(size)) * (DAY_S / rows)
        batch = [
            builder.logged(
                RequestRecord(
                    f"r{start + i}", "POST", "", model=MODEL, version=str(version.version)
                ),
                None,
                0.002 + 0.001 * (i % 7),
                Answer(
                    version.signature,
                    InferRequest(ModelRef.parse(MODEL), {"input": values[i : i + 1]}),
                    InferResponse(MODEL, version.version, {"variable": predicted[i : i + 1]}),
                ),
            )._replace(at=float(at[i]))  # as the request path records it, a day spread out
            for i in range(size)
        ]
        written, records = builder.to_rows(batch, lambda _logged: None)
        store.write(written)
        sketched = time.perf_counter()
        sketcher.write(written, records)
        sketch_s += time.perf_counter() - sketched
    sketched = time.perf_counter()
    sketcher.tidy()  # the hourly compaction a server runs
    sketch_s += time.perf_counter() - sketched
    return time.perf_counter() - started, sketch_s


def _rescan(services: Services, training: Any, psi_edges: dict[str, Any], since: Any) -> Any:
    """Every logged row read back, then scipy's statistics per feature."""
    columns: list[Any] = []
    for page in SqlPredictionStore(services.registry).scan(MODEL, since=since):
        columns.extend(row.inputs["input"][0] for row in page)
    logged = np.asarray(columns, np.float64)
    found: dict[str, dict[str, float]] = {}
    for i, name in enumerate(FEATURES):
        bins = np.concatenate([[-np.inf], psi_edges[name], [np.inf]])
        found[name] = {
            "psi": evidently_psi(
                np.histogram(training[:, i], bins)[0], np.histogram(logged[:, i], bins)[0]
            ),
            "ks": float(stats.ks_2samp(training[:, i], logged[:, i]).statistic),
        }
    return found, len(logged)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        url = options.database_url or f"sqlite:///{home / 'registry.db'}"
        services = build_services(Settings(home=home, database_url=url))
        try:
            _run(services, options.rows, url)
        finally:
            services.close()


def _run(services: Services, rows: int, url: str) -> None:
    model, training = _register(services)
    now = time.time()
    log_s, sketch_log_s = _log_day(services, model, rows, now)
    buckets = SketchStore(services.registry).window(MODEL)
    first = datetime.fromtimestamp(min(row.starts_at for row in buckets), UTC)
    span = Span.parse("1d")
    times = []
    for _ in range(MONITOR_RUNS):  # the median: a loaded machine swings a single call
        started = time.perf_counter()
        report = monitor(services, MODEL, span)
        times.append(time.perf_counter() - started)
    sketch_s = float(np.median(times))
    [group] = report.groups
    edges = {f.name: np.asarray(f.test("psi").bins, np.float64) for f in group.drift}  # type: ignore[union-attr]
    started = time.perf_counter()
    rescanned, read = _rescan(services, training, edges, first)  # the buckets' rows
    rescan_s = time.perf_counter() - started
    worst = {"psi": 0.0, "ks": 0.0}
    for found in group.drift:
        for test in ("psi", "ks"):
            mine = found.test(test).statistic  # type: ignore[union-attr]
            worst[test] = max(worst[test], abs(mine - rescanned[found.name][test]))
    flagged = [found.name for found in group.drift if found.drift]
    print(
        f"{rows:,} logged predictions x {len(FEATURES)} features over 1 day ({url.split(':')[0]})"
    )
    print(f"  log them (rows + sketches, 10k a batch)  {log_s:8.2f} s")
    per_row_us = sketch_log_s / rows * 1e6
    sketching = f"{sketch_log_s:8.2f} s  ({per_row_us:.1f} us/row)"
    print(f"    of which sketches (and compaction)     {sketching}")
    print(f"  sketch rows stored after compaction      {len(buckets):8d}")
    covered = group.window.logged
    print(f"  monitor --window 1d from sketches        {sketch_s:8.3f} s  ({covered:,} rows,")
    print(f"    median of {MONITOR_RUNS}: {', '.join(f'{t:.3f}' for t in times)} s)")
    print(f"  rescan of the rows with scipy            {rescan_s:8.2f} s  ({read:,} rows)")
    print(f"  rescan / sketches                        {rescan_s / sketch_s:8.0f} x")
    print("  largest |sketch - scipy|:", ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    print(f"  flagged: {', '.join(flagged)}")


if __name__ == "__main__":
    main()
