"""What ``isolation: process`` costs (issue #13): the same models served in process and
in child processes, side by side in one run.

    .venv/bin/python bench/isolation.py        # about 90 s on 2 cores

It registers the demo model (``servewell demo``: breast-cancer, ONNX, one row of 30 FP32
features a request) and a Python model whose call sleeps 1 ms (``tests/python_models/
slow.py`` with ``sleep_ms: 1``) in a temporary SERVEWELL_HOME, and starts two ``servewell
serve`` processes (one worker each, the response cache off, as bench/run.py's plain
server): one runs both models in process, the other with ``isolation: process`` for
both. Each server is pinned to core 0 with its children, wrk to core 1 (bench/run.py's
``run_wrk`` and ``post.lua``). For concurrency 1 and 64 it measures REST requests/s and
p50 of each model on each server, in rounds whose order rotates, and prints medians and
the isolated server's share of the in-process one.
"""

from __future__ import annotations

import argparse
import json
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
    median_point,
    register_demo,
    run_wrk,
    running_servers,
    write_bodies,
)

SLOW = "slow-1ms"
PYTHON_MODELS = Path(__file__).resolve().parent.parent / "tests" / "python_models"
ISOLATED = {
    "SERVEWELL_MODELS__BREAST_CANCER__ISOLATION": "process",
    "SERVEWELL_MODELS__SLOW_1MS__ISOLATION": "process",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=4, help="length of one point")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", default="1,64")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="servewell-bench-isolation-") as folder:
        home = Path(folder) / "home"
        os.environ["SERVEWELL_HOME"] = str(home)
        bodies = register_models(Path(folder))
        settings_of = {"in-process": PLAIN, "process": {**PLAIN, **ISOLATED}}
        with running_servers(Path(folder), settings_of) as servers:
            urls = {name: server.url for name, server in servers.items()}
            results = measure(urls, bodies, [int(c) for c in args.concurrency.split(",")], args)
    print_table(results)


def register_models(folder: Path) -> dict[str, dict[str, str]]:
    """The demo model and the 1 ms Python model; the wrk body spec of each."""
    row = register_demo()
    artifacts = folder / "slow-artifacts"
    artifacts.mkdir()
    (artifacts / "config.json").write_text(json.dumps({"sleep_ms": 1}))
    servewell = Path(sys.executable).parent / "servewell"
    subprocess.run(
        [
            str(servewell), "register", str(PYTHON_MODELS / "slow.py"), "--name", SLOW,
            "--format", "python", "--trust", "--artifacts", str(artifacts),
            "--signature", str(PYTHON_MODELS / "column.json"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    demo = write_bodies(folder / "bodies", row, "")["rest"]
    slow_body = folder / "bodies" / "slow.body"
    slow_body.write_text(json.dumps({"instances": [0.5]}))
    return {MODEL: demo, SLOW: {**demo, "BENCH_BODY": str(slow_body)}}


def measure(
    urls: dict[str, str],
    bodies: dict[str, dict[str, str]],
    concurrency: list[int],
    args: argparse.Namespace,
) -> dict[tuple[str, int, str], list[dict[str, Any]]]:
    """Every (model, c, server) point, once a round, the servers' order rotating."""
    results: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    servers = list(urls)
    for round_number in range(args.rounds):
        order = servers[round_number % 2 :] + servers[: round_number % 2]
        for model, body in bodies.items():
            for connections in concurrency:
                for server in order:
                    url = f"{urls[server]}/v1/models/{model}:predict"
                    point = run_wrk(url, body, connections, args.seconds)
                    results.setdefault((model, connections, server), []).append(point)
                    print(
                        f"round {round_number + 1}: {model} c={connections} {server}: "
                        f"{point['requests_per_s']:,.0f} req/s, p50 {point['p50_ms']:.3f} ms, "
                        f"errors {point['errors']}",
                        file=sys.stderr,
                    )
    return results


def print_table(results: dict[tuple[str, int, str], list[dict[str, Any]]]) -> None:
    print("| model | c | in-process req/s | process req/s | share | in-process p50 ms | "
          "process p50 ms | errors |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for model, connections in sorted({(m, c) for m, c, _ in results}):
        inside = median_point(results[(model, connections, "in-process")])
        isolated = median_point(results[(model, connections, "process")])
        share = isolated["requests_per_s"] / inside["requests_per_s"]
        print(
            f"| {model} | {connections} | {inside['requests_per_s']:,.0f} | "
            f"{isolated['requests_per_s']:,.0f} | {share:.0%} | {inside['p50_ms']:.3f} | "
            f"{isolated['p50_ms']:.3f} | {inside['errors'] + isolated['errors']} |"
        )


if __name__ == "__main__":
    main()
