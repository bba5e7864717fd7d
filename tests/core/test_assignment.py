"""Sticky assignment: stable across processes, fair by weight, per experiment."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from servewell.core.assignment import assign, bucket
from servewell.core.traffic import Arm, check_split

SPLIT = check_split([Arm("2", 90), Arm("3", 10)])
THREE = check_split([Arm("production", 50), Arm("canary", 30), Arm("7", 20)])
USERS = [f"user-{n}" for n in range(10_000)]

_ASSIGN_IN_A_FRESH_INTERPRETER = """
import json, sys
from servewell.core.assignment import assign
from servewell.core.traffic import Arm
arms = [Arm("production", 50), Arm("canary", 30), Arm("7", 20)]
users = [f"user-{n}" for n in range(2000)] + ["", "ünïcode", "x" * 500]
print(json.dumps([assign("exp-a", user or None, arms, lambda: 0.0).target for user in users]))
"""


def _assign_in_a_fresh_interpreter(hash_seed: str) -> list[str]:
    src = Path(__file__).resolve().parents[2] / "src"
    result = subprocess.run(
        [sys.executable, "-c", _ASSIGN_IN_A_FRESH_INTERPRETER],
        env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_the_same_user_gets_the_same_arm_in_every_process() -> None:
    first = _assign_in_a_fresh_interpreter("1")
    second = _assign_in_a_fresh_interpreter("2")
    assert first == second
    assert set(first) == {"production", "canary", "7"}
    here = [assign("exp-a", f"user-{n}", THREE) for n in range(2000)]
    assert first[:2000] == [arm.target for arm in here]


def test_a_users_bucket_is_pinned() -> None:
    """The hash itself is part of the contract: a change would move every user."""
    assert bucket("exp-a", "user-1") == pytest.approx(0.5861208268679574, abs=1e-15)


@pytest.mark.parametrize("arms", [SPLIT, THREE], ids=["90/10", "50/30/20"])
def test_shares_follow_the_weights(arms: tuple[Arm, ...]) -> None:
    counts = Counter(assign("exp-shares", user, arms).target for user in USERS)
    for arm in arms:
        share = 100 * counts[arm.target] / len(USERS)
        assert abs(share - arm.weight) <= 2, (arm, share)


def test_without_a_user_id_the_draw_decides_by_weight() -> None:
    draws = random.Random(7)
    counts = Counter(assign("exp-a", None, SPLIT, draws.random).target for _ in USERS)
    assert abs(100 * counts["3"] / len(USERS) - 10) <= 2
    assert assign("exp-a", None, SPLIT, lambda: 0.0).target == "2"
    assert assign("exp-a", None, SPLIT, lambda: 0.95).target == "3"
    assert assign("exp-a", "", SPLIT, lambda: 0.95).target == "3"  # an empty id is none


def test_a_new_experiment_reshuffles_users() -> None:
    before = [assign("exp-a", user, THREE).target for user in USERS]
    after = [assign("exp-b", user, THREE).target for user in USERS]
    moved = sum(a != b for a, b in zip(before, after, strict=True)) / len(USERS)
    # Independent draws move 1 - (0.5² + 0.3² + 0.2²) = 62 % of users.
    assert 0.55 < moved < 0.69


def test_moving_weight_moves_only_users_across_the_boundary() -> None:
    at_10 = [assign("exp-a", user, SPLIT).target for user in USERS]
    at_25 = [
        assign("exp-a", user, check_split([Arm("2", 75), Arm("3", 25)])).target for user in USERS
    ]
    moves = Counter((a, b) for a, b in zip(at_10, at_25, strict=True) if a != b)
    assert set(moves) == {("2", "3")}  # nobody on the candidate goes back
    assert abs(100 * moves["2", "3"] / len(USERS) - 15) <= 2
