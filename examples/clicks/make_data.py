"""Make a realistic, messy click-prediction data set: ``python make_data.py [clicks.csv]``.

10,000 sessions x 10 columns of user activity: when the session started and when the
user last clicked an ad, their device, age and recent activity, and whether they clicked
this time (about 1 in 8 do). Like real logs it has gaps (~2% missing values), a few
typos in the age column, and some rows logged twice.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 10_000
SEED = 7


def make_clicks(rows: int = ROWS, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-03-01")
    timestamp = start + pd.to_timedelta(rng.uniform(0, 60 * 24 * 3600, rows), unit="s")
    hours_since_click = rng.exponential(72, rows)
    last_click_at = timestamp - pd.to_timedelta(hours_since_click * 3600, unit="s")
    device = rng.choice(["mobile", "desktop", "tablet"], rows, p=[0.6, 0.3, 0.1])
    age = rng.integers(16, 75, rows)
    sessions_7d = rng.poisson(4, rows)
    impressions = rng.poisson(40, rows) + 1
    affinity = rng.beta(2, 20, rows)
    clicks = rng.binomial(impressions, affinity)
    time_on_site_s = rng.gamma(2.0, 90.0, rows).round(1)

    hour = timestamp.hour.to_numpy()
    logit = (
        -4.2
        + 30.0 * (clicks / impressions)
        - 0.03 * hours_since_click
        + 0.8 * (device == "mobile")
        + 0.9 * ((hour >= 18) & (hour <= 23))
        + 0.08 * sessions_7d
        - 0.01 * (age - 40)
    )
    clicked = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)

    frame = pd.DataFrame(
        {
            "user_id": [f"u{n:06d}" for n in rng.integers(0, 10**6, rows)],
            "timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%S"),
            "last_click_at": last_click_at.strftime("%Y-%m-%dT%H:%M:%S"),
            "device": device,
            "age": age.astype(object),
            "sessions_7d": sessions_7d,
            "impressions": impressions,
            "clicks": clicks.astype(float),
            "time_on_site_s": time_on_site_s,
            "clicked": clicked,
        }
    )
    return _make_messy(frame, rng)


def _make_messy(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    rows = len(frame)
    for column in ("device", "clicks", "time_on_site_s", "last_click_at", "sessions_7d"):
        gaps = rng.random(rows) < 0.02 / 5 * 2
        frame.loc[gaps, column] = np.nan
    typos = rng.choice(rows, 25, replace=False)
    frame.loc[typos, "age"] = rng.choice(["unknown", "n/a", "-1", "230"], 25)
    twice = frame.sample(120, random_state=1)
    return pd.concat([frame, twice]).sample(frac=1, random_state=2).reset_index(drop=True)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "clicks.csv")
    data = make_clicks()
    data.to_csv(path, index=False)
    print(
        f"wrote {path}: {len(data):,} rows x {data.shape[1]} columns, "
        f"{data['clicked'].mean():.1%} clicked"
    )
