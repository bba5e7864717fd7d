"""What serving by a traffic policy costs (issue #14): a 90/10 sticky split against the
same server without a policy, side by side in one run.

    .venv/bin/python bench/traffic.py          # about 60 s on 2 cores

It registers the demo model (``servewell demo``: breast-cancer, ONNX, one row of 30 FP32
features a request) in each of two temporary SERVEWELL_HOMEs, its ONNX file again as
version 2,
sets ``servewell traffic split breast-cancer 1=90 2=10`` in one of them, and starts a
``servewell serve`` on each (one worker, the response cache, keys and rate limits off,
as bench/run.py's plain server). Each server is pinned to core 0, wrk to core 1
(bench/run.py's ``run_wrk``); every request carries ``X-User-ID`` (10,000 users in
turn, ``post.lua``'s BENCH_USERS), so the routed server assigns each one sticky. REST at
concurrency 64, in rounds whose order rotates; it prints medians and the routed
server's share of the plain one (target: at least 97%).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from run import (
    MODEL,
    PLAIN,
    REST_PATH,
    median_point,
    register_demo,
    run_wrk,
    running_servers,
    write_bodies,
)

SERVEWELL = Path(sys.executable).parent / "servewell"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one point")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="servewell-bench-traffic-") as folder:
        bodies: dict[str, str] = {}

        def prepare(name: str) -> None:
            os.environ["SERVEWELL_HOME"] = str(Path(folder) / name / "home")
            row = register_demo()
            register_second_version()
            if name == "split":
                command = [str(SERVEWELL), "traffic", "split", MODEL, "1=90", "2=10"]
                subprocess.run(command, check=True, capture_output=True)
            bodies.update(write_bodies(Path(folder) / "bodies", row, "")["rest"])

        with running_servers(
            Path(folder), dict.fromkeys(("plain", "split"), PLAIN), prepare
        ) as servers:
            urls = {name: server.url for name, server in servers.items()}
            bodies["BENCH_USERS"] = "10000"
            for url in urls.values():  # warm up
                run_wrk(url + REST_PATH, bodies, 16, 1)
            results = measure(urls, bodies, args)
            arms = served_arms(urls["split"])
    print_table(results, args.concurrency)
    total = sum(arms.values())
    spelled = ", ".join(
        f"arm {arm}: {count:,} ({count / total:.1%})" for arm, count in arms.items()
    )
    print(f"\nthe split server's arms, from its /metrics: {spelled}")


def register_second_version() -> None:
    """The demo's ONNX model again, as version 2 (``servewell demo`` reuses version 1)."""
    from servewell.bootstrap import build_services
    from servewell.registration.register import register_file
    from servewell.registry import ONNX
    from servewell.settings import load_settings

    services = build_services(load_settings())
    try:
        artifact = services.registry.get_version(MODEL, 1).artifact(ONNX)
        path = services.artifacts.fetch(artifact.uri, artifact.sha256)
        register_file(services, Path(path), MODEL, format="onnx")
    finally:
        services.close()


def served_arms(url: str) -> dict[str, int]:
    """Requests per arm the split server counted (proof that it routed them)."""
    import httpx

    from servewell.observability.arm_stats import arm_stats

    stats = arm_stats(httpx.get(f"{url}/metrics").text, MODEL)
    return {arm: stats[arm].requests for arm in sorted(stats)}


def measure(
    urls: dict[str, str], body: dict[str, str], args: argparse.Namespace
) -> dict[str, list[dict[str, Any]]]:
    """Every server's point, once a round, their order rotating."""
    results: dict[str, list[dict[str, Any]]] = {}
    servers = list(urls)
    for round_number in range(args.rounds):
        order = servers[round_number % 2 :] + servers[: round_number % 2]
        for server in order:
            point = run_wrk(urls[server] + REST_PATH, body, args.concurrency, args.seconds)
            results.setdefault(server, []).append(point)
            print(
                f"round {round_number + 1}: {server}: {point['requests_per_s']:,.0f} req/s, "
                f"p50 {point['p50_ms']:.3f} ms, p99 {point['p99_ms']:.3f} ms, "
                f"errors {point['errors']}",
                file=sys.stderr,
            )
    return results


def print_table(results: dict[str, list[dict[str, Any]]], connections: int) -> None:
    plain, split = median_point(results["plain"]), median_point(results["split"])
    share = split["requests_per_s"] / plain["requests_per_s"]
    print("| c | no policy req/s | 90/10 sticky req/s | share | no policy p50/p99 ms | "
          "90/10 p50/p99 ms | errors |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {connections} | {plain['requests_per_s']:,.0f} | {split['requests_per_s']:,.0f} | "
        f"{share:.1%} | {plain['p50_ms']:.2f} / {plain['p99_ms']:.2f} | "
        f"{split['p50_ms']:.2f} / {split['p99_ms']:.2f} | "
        f"{plain['errors'] + split['errors']:.0f} |"
    )


if __name__ == "__main__":
    main()
