"""What the request path's metrics cost a request, in CPU time (issue #10).

Run: ``PYTHONPATH=src python bench/metrics.py``. Prints the best of 15 runs of each
call (one answered request, one cache lookup, one rate-limit decision, all three) and
what one scrape with ~100 request series costs.
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from servewell.observability import ServingMetrics


def _best_ns(call: Callable[[], object], number: int = 100_000) -> float:
    runs = timeit.repeat(call, number=number, repeat=15, timer=time.process_time)
    return min(runs) / number * 1e9


def main() -> None:
    metrics = ServingMetrics(CollectorRegistry())

    def one_request() -> None:
        metrics.count_rate_limit("ci-bot", "allowed")
        metrics.count_cache("iris", "miss")
        metrics.observe_request("iris", "1", "rest", 200, 0.0042)

    calls = {
        "observe_request": lambda: metrics.observe_request("iris", "1", "rest", 200, 0.0042),
        "count_cache": lambda: metrics.count_cache("iris", "hit"),
        "count_rate_limit (a key)": lambda: metrics.count_rate_limit("ci-bot", "allowed"),
        "count_rate_limit (no key)": lambda: metrics.count_rate_limit("ip:10.0.0.1", "allowed"),
        "one request (all three)": one_request,
    }
    for name, call in calls.items():
        print(f"{name:30s} {_best_ns(call):7.0f} ns")
    for index in range(25):
        for status in (200, 400, 429, 500):
            metrics.observe_request(f"m{index}", "1", "rest", status, 0.01)
    print(f"{'render (~100 request series)':30s} {_best_ns(metrics.render, 200) / 1e3:7.0f} µs")


if __name__ == "__main__":
    main()
