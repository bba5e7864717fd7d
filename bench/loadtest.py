"""``servewell loadtest``'s client side by side with wrk: is the load generator the
bottleneck?

    .venv/bin/python bench/loadtest.py            # about 6 minutes on 2 cores

It serves the demo model (``servewell serve``, validation, metrics and access log on;
keys, rate limits and the response cache off, as ``bench/run.py``'s ``rest`` row) and,
beside it, the HTTP floor (``bench/floor.py``: the fastest server this stack makes),
each pinned to core 0; both load generators run on core 1, one at a time, with the
same REST body. Per server, in rounds whose order alternates:

  max     wrk -c64 and servewell's closed loop at 64 connections: the most each gets
          (the target: servewell at least half of wrk's)
  c=1     both at one connection, and c=16: throughput and p50 (the target: within 15 %)
  rate    servewell's open loop at a third of wrk's c=16 rate: what it sent per second
          against the rate asked, and its p50 against wrk's at c=1

wrk2 (a fixed-rate wrk) is not installed here, so the fixed-rate comparison is against
wrk's closed loop: at one connection the server is never queued, as at a rate well
below saturation. The medians of the rounds go to a table and bench/results/<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from run import (
    LOAD_CORE,
    PLAIN,
    REST_PATH,
    free_port,
    register_demo,
    run_wrk,
    start_floor,
    start_servewell,
    wait_ready,
    write_bodies,
)

BENCH = Path(__file__).resolve().parent


def servewell_client(url: str, body: Path, load: str, seconds: int) -> dict[str, Any]:
    """servewell's load generator on the load core: ``load`` is ``c=<n>`` or ``r=<rate>``."""
    command = [
        "taskset", "-c", LOAD_CORE, sys.executable, str(Path(__file__)), "--client",
        url, str(body), load, str(seconds),
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output)  # type: ignore[no-any-return]


def client_main(url: str, body_path: str, load: str, seconds: int) -> None:
    """One run of the library's client (what ``servewell loadtest --body`` sends)."""
    from servewell.loadtest.bodies import build_requests
    from servewell.loadtest.client import Target
    from servewell.loadtest.run import Plan, run_load_test
    from servewell.loadtest.schedule import Step

    target = Target.parse(url)
    body = Path(body_path).read_bytes()
    bodies = (REST_PATH, [body], {"Content-Type": "application/json"})
    requests = build_requests(target, "breast-cancer", None, bodies, None, 0.0)
    kind, value = load.split("=")
    step = (
        Step(load, seconds, concurrency=int(value))
        if kind == "c"
        else Step(load, seconds, rate_per_s=float(value))
    )
    result = run_load_test(Plan([step]), target, requests).steps[0]
    print(
        json.dumps(
            {
                "requests_per_s": result.throughput_rps,
                "p50_ms": result.latency_ms["p50"],
                "p99_ms": result.latency_ms["p99"],
                "errors": sum(result.errors.values()),
            }
        )
    )


def measure(url: str, body: dict[str, str], seconds: int, flip: bool) -> dict[str, Any]:
    """One round against one server: wrk and servewell at c=64, c=1, c=16, then the rate."""
    path = Path(body["BENCH_BODY"])
    found: dict[str, Any] = {}
    for connections in (64, 1, 16):
        order = ("servewell", "wrk") if flip else ("wrk", "servewell")
        for tool in order:
            found[f"{tool} c={connections}"] = (
                run_wrk(url + REST_PATH, body, connections, seconds)
                if tool == "wrk"
                else servewell_client(url, path, f"c={connections}", seconds)
            )
    rate = round(found["wrk c=16"]["requests_per_s"] / 3)
    found["servewell rate"] = {**servewell_client(url, path, f"r={rate}", seconds), "rate": rate}
    return found


def median_of(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        name: {key: statistics.median(r[name][key] for r in rounds) for key in rounds[0][name]}
        for name in rounds[0]
    }


def print_table(server: str, figures: dict[str, dict[str, float]]) -> None:
    print(f"\n{server}")
    print(f"{'run':<18}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, f in figures.items():
        print(
            f"{name:<18}{f['requests_per_s']:>10.0f}{f['p50_ms']:>9.2f}{f['p99_ms']:>9.2f}"
            f"{f['errors']:>8.0f}"
        )
    wrk, ours = figures["wrk c=64"], figures["servewell c=64"]
    print(f"servewell max / wrk max: {ours['requests_per_s'] / wrk['requests_per_s']:.2f} (>= 0.5)")
    for c in (1, 16):
        w, s = figures[f"wrk c={c}"], figures[f"servewell c={c}"]
        print(
            f"c={c}: throughput {s['requests_per_s'] / w['requests_per_s']:.2f}, "
            f"p50 {s['p50_ms'] / w['p50_ms']:.2f} of wrk's (within 0.85-1.15)"
        )
    r = figures["servewell rate"]
    print(
        f"rate {r['rate']:.0f}/s: sent {r['requests_per_s']:.0f}/s, p50 {r['p50_ms']:.2f} ms "
        f"({r['p50_ms'] / figures['wrk c=1']['p50_ms']:.2f} of wrk's at c=1)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        os.environ["SERVEWELL_HOME"] = str(home / "home")
        os.chdir(home)
        row = register_demo()
        body = write_bodies(home / "bodies", row, "")["rest"]
        port, floor_port = free_port(), free_port()
        servers = {
            "servewell": (f"http://127.0.0.1:{port}", start_servewell(port, home / "sw", PLAIN)),
            "floor": (f"http://127.0.0.1:{floor_port}", start_floor(floor_port)),
        }
        try:
            wait_ready(f"{servers['servewell'][0]}/v2/health/ready")
            wait_ready(servers["floor"][0], post=body)
            report = {}
            for name, (url, _) in servers.items():
                rounds = [measure(url, body, args.seconds, i % 2 == 1) for i in range(args.rounds)]
                report[name] = median_of(rounds)
                print_table(name, report[name])
        finally:
            for _, process in servers.values():
                process.terminate()
                process.wait(timeout=60)
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    out = results / f"loadtest-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
