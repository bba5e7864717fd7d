"""Which arm of a split answers a request: sticky per user, random without one.

A user id is hashed with the experiment id (BLAKE2b, never Python's ``hash()``, which is
salted per process) into a number in [0, 1); the arms cover [0, 1) in their order, each
as wide as its share. So the same user gets the same arm for the same experiment on
every worker, every replica and after restarts; a new experiment id reshuffles everyone;
and moving weight between two neighbouring arms moves only the users near their boundary.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from hashlib import blake2b

from servewell.core.traffic import TOTAL_WEIGHT, Arm

_SCALE = 2.0**64


def bucket(experiment_id: str, user_id: str) -> float:
    """A user's stable place in [0, 1) for one experiment."""
    spelled = f"{experiment_id}\0{user_id}".encode("utf-8", "surrogatepass")
    digest = blake2b(spelled, digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def assign(
    experiment_id: str,
    user_id: str | None,
    arms: Sequence[Arm],
    draw: Callable[[], float] = random.random,
) -> Arm:
    """The arm for ``user_id`` (sticky), or a random one by weight without a user id.

    ``arms`` are a checked split (``core/traffic.check_split``): weights add up to 100.
    """
    point = bucket(experiment_id, user_id) if user_id else draw()
    edge = 0
    for arm in arms:
        edge += arm.weight
        if point * TOTAL_WEIGHT < edge:
            return arm
    return arms[-1]  # only if the weights add up to less than 100
