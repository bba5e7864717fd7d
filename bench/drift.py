"""Drift of a 1-day window of 1M logged rows over 30 features: from sketches, and by a
rescan of the rows with scipy, side by side in one run (issue #20).

Run: ``PYTHONPATH=src python bench/drift.py [--rows 1000000]``. Builds a training
reference (100k rows: 24 numbers of four shapes, 6 categories), then, feature by
feature, "logs" the day's rows in batches of 10k into 24 hourly sketches (as the log
would, per hour) and merges them into the day's; the same rows are then rescanned:
``scipy.stats.ks_2samp`` and ``wasserstein_distance`` against the training values, PSI
(Evidently's formula on the same bins) from ``np.histogram`` and ``chisquare`` from
counted categories. Four numbers (+0.5 sd) and one category (shares reversed) are
shifted. Prints the times and the largest difference of each statistic between the two
ways.
"""

from __future__ import annotations

import argparse
import time
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from servewell.stats import build_profile
from servewell.stats.drift import FeatureDrift
from servewell.stats.reference import NumericReference, Reference, references

TRAINING_ROWS = 100_000
BATCH_ROWS = 10_000
HOURS = 24
SHAPES: dict[str, Callable[[np.random.Generator, int], Any]] = {
    "normal": lambda rng, n: rng.normal(50, 10, n),
    "lognormal": lambda rng, n: rng.lognormal(3, 0.8, n),
    "uniform": lambda rng, n: rng.uniform(0, 1, n),
    "counts": lambda rng, n: rng.poisson(4, n).astype(np.float64),
}
CATEGORIES = np.array(["web", "ios", "android", "tv", "car", "watch", "kiosk", "other-app"])
SHARES = np.array([0.35, 0.25, 0.2, 0.08, 0.05, 0.04, 0.02, 0.01])


def _feature_names() -> list[str]:
    numbers = [f"{shape}_{i}" for i in range(6) for shape in SHAPES]
    return numbers + [f"channel_{i}" for i in range(6)]


def _draw(name: str, rows: int, seed: int, shifted: bool) -> Any:
    rng = np.random.default_rng(seed)
    if name.startswith("channel"):
        shares = SHARES[::-1] if shifted else SHARES
        return rng.choice(CATEGORIES, size=rows, p=shares / shares.sum()).astype(object)
    values = SHAPES[name.split("_")[0]](rng, rows)
    return values + 0.5 * values.std() if shifted else values


def _is_shifted(name: str) -> bool:
    return name.endswith("_0")


def _sketch_day(reference: Reference, name: str, rows: int) -> tuple[Any, float, float]:
    """Hourly sketches updated batch by batch, merged into the day: (sketch, update s,
    merge s)."""
    hours = [reference.new_sketch() for _ in range(HOURS)]
    values = _draw(name, rows, seed=zlib.crc32(name.encode()), shifted=_is_shifted(name))
    started = time.perf_counter()
    for number, start in enumerate(range(0, rows, BATCH_ROWS)):
        hours[number * HOURS * BATCH_ROWS // rows].update(values[start : start + BATCH_ROWS])
    updated = time.perf_counter()
    day = hours[0]
    for hour in hours[1:]:
        day = day.merge(hour)  # type: ignore[arg-type]
    return day, updated - started, time.perf_counter() - updated


def _fill(shares: Any) -> Any:
    smallest = shares[shares != 0].min()
    return np.where(shares == 0, smallest / 1e6 if smallest <= 1e-4 else 1e-4, shares)


def evidently_psi(reference: Any, current: Any) -> float:
    """PSI of two histograms as Evidently's ``psi`` stattest computes it."""
    r, c = _fill(reference / reference.sum()), _fill(current / current.sum())
    return float(np.sum((r - c) * np.log(r / c)))


def _rescan(reference: Reference, training: Any, logged: Any) -> dict[str, float]:
    """The same statistics from the raw rows, with scipy."""
    if isinstance(reference, NumericReference):
        bins = np.concatenate([[-np.inf], reference.psi_edges, [np.inf]])
        return {
            "psi": evidently_psi(np.histogram(training, bins)[0], np.histogram(logged, bins)[0]),
            "ks": float(stats.ks_2samp(training, logged).statistic),
            "wasserstein": float(stats.wasserstein_distance(training, logged))
            / max(float(np.std(training)), 0.001),
        }
    names, ref_counts = np.unique(training, return_counts=True)
    cur = dict(zip(*np.unique(logged, return_counts=True), strict=True))
    observed = np.array([cur.get(n, 0) for n in names], dtype=np.float64)
    expected = ref_counts / ref_counts.sum() * observed.sum()
    return {
        "psi": evidently_psi(ref_counts.astype(np.float64), observed),
        "chisquare": float(stats.chisquare(observed, expected).statistic),
    }


def _statistics(drift: FeatureDrift) -> dict[str, float]:
    return {test.test: test.statistic for test in drift.tests}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    names = _feature_names()
    training = {
        name: _draw(name, TRAINING_ROWS, seed=i, shifted=False) for i, name in enumerate(names)
    }
    kinds: dict[str, Any] = {
        n: "categorical" if n.startswith("channel") else "numeric" for n in names
    }
    started = time.perf_counter()
    profile = build_profile(training, kinds)
    profile_s = time.perf_counter() - started
    refs, _ = references(profile)

    update_s = merge_s = sketch_drift_s = rescan_s = 0.0
    worst: dict[str, float] = {}
    flagged: list[str] = []
    for name in names:
        day, updating, merging = _sketch_day(refs[name], name, rows)
        update_s, merge_s = update_s + updating, merge_s + merging
        started = time.perf_counter()
        drift = refs[name].drift(day)  # type: ignore[arg-type]
        sketch_drift_s += time.perf_counter() - started
        logged = _draw(name, rows, seed=zlib.crc32(name.encode()), shifted=_is_shifted(name))
        started = time.perf_counter()
        rescanned = _rescan(refs[name], training[name], logged)
        rescan_s += time.perf_counter() - started
        for test, value in _statistics(drift).items():
            worst[test] = max(worst.get(test, 0.0), abs(value - rescanned[test]))
        if drift.drift:
            flagged.append(name)

    print(f"{rows:,} logged rows x {len(names)} features ({TRAINING_ROWS:,} training rows)")
    print(f"  reference profile build          {profile_s:8.2f} s")
    per_row_us = update_s / rows * 1e6
    print(f"  sketch updates (batches of 10k)  {update_s:8.2f} s  ({per_row_us:.2f} us/row)")
    print(f"  merge 24 hourly sketches         {merge_s * 1e3:8.2f} ms")
    print(f"  drift from sketches              {sketch_drift_s * 1e3:8.2f} ms")
    print(f"  drift by rescan with scipy       {rescan_s:8.2f} s")
    print(f"  rescan / sketches                {rescan_s / sketch_drift_s:8.0f} x")
    print("  largest |sketch - rescan|:", ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    print(f"  flagged: {', '.join(flagged)}")


if __name__ == "__main__":
    main()
