"""The in-process cache's byte budget is what its entries really hold in memory,
measured with tracemalloc (memory, not time)."""

from __future__ import annotations

import gc
import os
import tracemalloc

import pytest

from servewell.cache import MemoryResponseCache, cache_key

BUDGET_BYTES = 1024 * 1024


@pytest.mark.parametrize("stale_ttl_s", [0.0, 3600.0], ids=["fresh", "kept-stale"])
@pytest.mark.parametrize("value_bytes", [60, 400, 5000], ids=lambda n: f"{n}B answers")
def test_memory_held_stays_near_the_byte_budget(value_bytes: int, stale_ttl_s: float) -> None:
    """Fill the cache to three times its budget with answers of one size (small ones
    are the hard case: their overhead outweighs their bytes) and measure what it holds,
    with entries kept stale for the ``cache`` fallback or not."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache = MemoryResponseCache(max_bytes=BUDGET_BYTES)
        for index in range(3 * BUDGET_BYTES // value_bytes):
            body = os.urandom(16) + index.to_bytes(8, "little")
            key = cache_key("iris", 3, body)
            cache.set_now(key, os.urandom(value_bytes), ttl_s=60, stale_ttl_s=stale_ttl_s)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache.stats.evictions > 0  # the budget was reached
    assert cache.size_bytes <= BUDGET_BYTES
    assert held <= 1.5 * BUDGET_BYTES, f"holds {held / BUDGET_BYTES:.2f}x its budget"
    assert held >= 0.7 * BUDGET_BYTES, "counts more than entries really cost"
