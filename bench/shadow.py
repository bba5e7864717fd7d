"""What a shadow costs the primary (issue #14): the demo model with a 200 ms shadow at
100 % against the same server without one, side by side in one run.

    .venv/bin/python bench/shadow.py          # about 70 s on 2 cores

It registers the demo model (``servewell demo``: breast-cancer, ONNX, one row of 30 FP32
features a request) in each of two temporary SERVEWELL_HOMEs and, as version 2,
``bench/models/slow_classifier.py`` (sleeps 200 ms a call) with the demo's signature;
one home gets ``servewell traffic shadow breast-cancer 2 --percent 100``. A ``servewell
serve`` on each (one worker; response cache, keys and rate limits off, as bench/run.py's
plain server), pinned to core 0, wrk to core 1 (bench/run.py's ``run_wrk``). REST at
concurrency 16 and 64, in rounds whose order rotates; it prints the medians, the
shadowed server's p50 against the plain one's (target: within 10 %) and what the
shadow did, from its /metrics (copies compared, dropped).
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
SLOW = Path(__file__).resolve().parent / "models" / "slow_classifier.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one point")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="servewell-bench-shadow-") as folder:
        bodies: dict[str, str] = {}

        def prepare(name: str) -> None:
            os.environ["SERVEWELL_HOME"] = str(Path(folder) / name / "home")
            row = register_demo()
            register_slow_version(Path(folder) / name)
            if name == "shadow":
                command = [str(SERVEWELL), "traffic", "shadow", MODEL, "2", "--percent", "100"]
                subprocess.run(command, check=True, capture_output=True)
            bodies.update(write_bodies(Path(folder) / "bodies", row, "")["rest"])

        settings = {**PLAIN, "SERVEWELL_SERVER__MODELS": f'["{MODEL}@1"]'}
        with running_servers(
            Path(folder), dict.fromkeys(("plain", "shadow"), settings), prepare
        ) as servers:
            urls = {name: server.url for name, server in servers.items()}
            for url in urls.values():  # warm up
                run_wrk(url + REST_PATH, bodies, 16, 1)
            results = {c: measure(urls, bodies, c, args) for c in (16, 64)}
            shadowed = shadow_counts(urls["shadow"])
    print_table(results)
    print(f"\nthe shadow server's shadow, from its /metrics: {shadowed}")


def register_slow_version(folder: Path) -> None:
    """The 200 ms classifier as version 2, with version 1's signature."""
    from servewell.bootstrap import build_services
    from servewell.registration.register import RegisterOptions, register_file
    from servewell.settings import load_settings

    artifacts = folder / "slow_artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "config.json").write_text('{"sleep_ms": 200}', encoding="utf-8")
    services = build_services(load_settings())
    try:
        signature = services.registry.get_version(MODEL, 1).signature
        options = RegisterOptions(
            signature=signature, artifacts=artifacts, model_class="SlowClassifier"
        )
        register_file(services, SLOW, MODEL, format="python", trust=True, options=options)
    finally:
        services.close()


def shadow_counts(url: str) -> str:
    import httpx

    from servewell.observability.shadow_stats import shadow_stats

    stats = shadow_stats(httpx.get(f"{url}/metrics").text, MODEL)
    p50 = f"{1000 * stats.p50_s:.0f} ms" if stats.p50_s is not None else "none"
    return f"{stats.copies:,} copies computed (p50 {p50}), {stats.dropped:,} dropped"


def measure(
    urls: dict[str, str], body: dict[str, str], connections: int, args: argparse.Namespace
) -> dict[str, list[dict[str, Any]]]:
    """Every server's point at ``connections``, once a round, their order rotating."""
    results: dict[str, list[dict[str, Any]]] = {}
    servers = list(urls)
    for round_number in range(args.rounds):
        order = servers[round_number % 2 :] + servers[: round_number % 2]
        for server in order:
            point = run_wrk(urls[server] + REST_PATH, body, connections, args.seconds)
            results.setdefault(server, []).append(point)
            print(
                f"c={connections} round {round_number + 1}: {server}: "
                f"{point['requests_per_s']:,.0f} req/s, p50 {point['p50_ms']:.3f} ms, "
                f"p99 {point['p99_ms']:.3f} ms, errors {point['errors']}",
                file=sys.stderr,
            )
    return results


def print_table(results: dict[int, dict[str, list[dict[str, Any]]]]) -> None:
    print("| c | no shadow req/s | shadow req/s | no shadow p50/p99 ms | shadow p50/p99 ms | "
          "p50 ratio | errors |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for connections, points in results.items():
        plain, shadow = median_point(points["plain"]), median_point(points["shadow"])
        print(
            f"| {connections} | {plain['requests_per_s']:,.0f} | "
            f"{shadow['requests_per_s']:,.0f} | {plain['p50_ms']:.2f} / {plain['p99_ms']:.2f} | "
            f"{shadow['p50_ms']:.2f} / {shadow['p99_ms']:.2f} | "
            f"{shadow['p50_ms'] / plain['p50_ms']:.1%} | {plain['errors'] + shadow['errors']:.0f} |"
        )


if __name__ == "__main__":
    main()
