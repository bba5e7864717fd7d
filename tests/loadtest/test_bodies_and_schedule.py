"""Bodies from a profile's sample or the signature, the invalid share, the open loop's
schedule."""

from __future__ import annotations

import orjson
import pytest

from servewell.core.signature import Signature
from servewell.loadtest.bodies import build_requests, generated_bodies
from servewell.loadtest.client import Target
from servewell.loadtest.schedule import intended_time_s

SIGNATURE = Signature.from_dict(
    {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 2]}],
        "feature_names": ["a", "b"],
        "feature_ranges": {"a": {"min": 5, "max": 6}},
    }
)
PROFILE = {"sample": {"rows": 2, "features": {"a": [1.5, 2.5], "b": [10.0, 20.0]}}}


def test_rows_come_from_the_profiles_sample() -> None:
    path, bodies, _ = generated_bodies("m", None, SIGNATURE, PROFILE, "rest", 3)
    assert path == "/v1/models/m:predict"
    rows = [row for body in bodies for row in orjson.loads(body)["instances"]]
    assert {tuple(row) for row in rows} <= {(1.5, 10.0), (2.5, 20.0)}


def test_without_a_profile_values_keep_to_the_declared_ranges() -> None:
    path, bodies, _ = generated_bodies("m", 2, SIGNATURE, None, "v2", 4)
    assert path == "/v2/models/m/versions/2/infer"
    tensor = orjson.loads(bodies[0])["inputs"][0]
    assert tensor["shape"] == [4, 2]
    assert all(5 <= value <= 6 for value in tensor["data"][::2])
    binary = generated_bodies("m", None, SIGNATURE, None, "v2-binary", 1)
    assert "Inference-Header-Content-Length" in binary[2]


def test_the_invalid_share_is_exact_and_evenly_spread() -> None:
    bodies = generated_bodies("m", None, SIGNATURE, None, "rest", 1)
    requests = build_requests(Target.parse("http://127.0.0.1:9"), "m", None, bodies, "k", 0.05)
    picks = [requests.pick(k)[1] for k in range(1000)]
    assert sum(picks) == 50
    assert all(sum(picks[i : i + 20]) == 1 for i in range(0, 1000, 20))
    assert b"Authorization: Bearer k" in requests.pick(0)[0]


def test_the_open_loop_ramps_linearly_then_holds_the_rate() -> None:
    rate, ramp = 100.0, 2.0
    assert intended_time_s(0, rate, ramp) == 0.0
    assert intended_time_s(100, rate, ramp) == pytest.approx(ramp)  # rate * ramp / 2 by then
    assert intended_time_s(200, rate, ramp) - intended_time_s(199, rate, ramp) == pytest.approx(
        0.01
    )
    assert intended_time_s(50, rate, 0.0) == pytest.approx(0.5)
