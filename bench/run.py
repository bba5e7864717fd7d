"""servewell's serving benchmark: one command, one machine, one run.

    .venv/bin/python bench/run.py            # about 4 minutes on 2 cores

It trains and registers the demo model in a temporary SERVEWELL_HOME, serves it with
``servewell serve`` (one worker process) and, beside it, a bare ASGI app on the same
uvicorn settings that parses the same JSON body and answers a constant (the HTTP floor).
Each server is pinned to core 0 and wrk to core 1. For concurrency 1, 16 and 64 it
measures requests/s, p50 and p99 of:

  rest       servewell REST  (POST /v1/models/breast-cancer:predict, one row)
  v2_json    servewell V2 JSON (POST /v2/models/breast-cancer/infer)
  v2_binary  servewell V2 with Triton's binary tensor data
  floor      the bare ASGI app, given the REST body

in rounds that interleave the systems (their order rotates each round), and reports the
median of the rounds; it also reads the mean batch size of each servewell run from the
server's own metrics, and times the in-process runtime alone (rows/s for 1 row and for
batches of 32). It prints a table and writes bench/results/<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

BENCH = Path(__file__).resolve().parent
MODEL = "breast-cancer"
SYSTEMS = ("rest", "v2_json", "v2_binary", "floor")
SERVER_CORE, LOAD_CORE = "0", "1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one point")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16,64")
    args = parser.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="servewell-bench-") as folder:
        home = Path(folder) / "home"
        os.environ["SERVEWELL_HOME"] = str(home)
        row = register_demo()
        bodies = write_bodies(Path(folder), row)
        servewell_port, floor_port = free_port(), free_port()
        servers = [start_servewell(servewell_port, Path(folder)), start_floor(floor_port)]
        try:
            wait_ready(f"http://127.0.0.1:{servewell_port}/v2/health/ready")
            wait_ready(f"http://127.0.0.1:{floor_port}/", post=bodies["rest"])
            urls = {
                "rest": f"http://127.0.0.1:{servewell_port}/v1/models/{MODEL}:predict",
                "v2_json": f"http://127.0.0.1:{servewell_port}/v2/models/{MODEL}/infer",
                "v2_binary": f"http://127.0.0.1:{servewell_port}/v2/models/{MODEL}/infer",
                "floor": f"http://127.0.0.1:{floor_port}/",
            }
            metrics_url = f"http://127.0.0.1:{servewell_port}/metrics"
            for system in SYSTEMS:  # warm every path up
                run_wrk(urls[system], bodies[system], 16, 1)
            points = measure(urls, bodies, metrics_url, concurrency, args)
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
        runtime = measure_runtime()
    report = summarize(points, runtime, args)
    print_table(report)
    out = BENCH / "results" / time.strftime("%Y%m%d-%H%M%S.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


# --- set-up ----------------------------------------------------------------------------------


def register_demo() -> list[float]:
    """Train and register the demo model (``servewell demo``); one real row of its data."""
    from sklearn.datasets import load_breast_cancer

    servewell = Path(sys.executable).parent / "servewell"
    subprocess.run([str(servewell), "demo"], check=True, capture_output=True)
    return [float(value) for value in load_breast_cancer().data[0]]


def write_bodies(folder: Path, row: list[float]) -> dict[str, dict[str, str]]:
    rest = json.dumps({"instances": [row]}).encode()
    v2 = json.dumps(
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 30], "data": row}]}
    ).encode()
    raw = np.array([row], dtype=np.float32).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": [1, 30],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    bodies = {
        "rest": (rest, "application/json", ""),
        "v2_json": (v2, "application/json", ""),
        "v2_binary": (header + raw, "application/octet-stream", str(len(header))),
        "floor": (rest, "application/json", ""),
    }
    specs = {}
    for name, (content, content_type, header_length) in bodies.items():
        path = folder / f"{name}.body"
        path.write_bytes(content)
        specs[name] = {
            "BENCH_BODY": str(path),
            "BENCH_CONTENT_TYPE": content_type,
            "BENCH_HEADER_LENGTH": header_length,
        }
    return specs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_servewell(port: int, folder: Path) -> subprocess.Popen[bytes]:
    servewell = Path(sys.executable).parent / "servewell"
    log = (folder / "servewell.log").open("wb")
    # Validation, metrics, access logs and batching on; API keys, rate limits and the
    # response cache off: the floor has none of them, and a cache would answer every
    # repeat of the benchmark's one body without the model.
    env = {
        **os.environ,
        "SERVEWELL_AUTH__ENABLED": "false",
        "SERVEWELL_RATE_LIMITS__ENABLED": "false",
        "SERVEWELL_CACHE__ENABLED": "false",
    }
    return subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, str(servewell), "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
        env=env,
    )


def start_floor(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "taskset", "-c", SERVER_CORE, sys.executable, "-m", "uvicorn", "floor:app",
            "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning", "--app-dir", str(BENCH),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_ready(url: str, post: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if post is None:
                ok = httpx.get(url).status_code == 200
            else:
                ok = httpx.post(url, content=Path(post["BENCH_BODY"]).read_bytes()).is_success
            if ok:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} did not become ready")


# --- measuring -------------------------------------------------------------------------------


def measure(
    urls: dict[str, str],
    bodies: dict[str, dict[str, str]],
    metrics_url: str,
    concurrency: list[int],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    points = []
    for round_number in range(args.rounds):
        for connections in concurrency:
            shift = round_number % len(SYSTEMS)
            for system in SYSTEMS[shift:] + SYSTEMS[:shift]:
                before = batch_totals(metrics_url) if system != "floor" else None
                result = run_wrk(urls[system], bodies[system], connections, args.seconds)
                if before is not None:
                    rows, batches = (
                        a - b for a, b in zip(batch_totals(metrics_url), before, strict=True)
                    )
                    result["mean_batch_size"] = rows / batches if batches else None
                if result["errors"]:
                    sys.exit(f"{system} answered {result['errors']} non-2xx responses")
                result.update(system=system, concurrency=connections, round=round_number)
                points.append(result)
                print(
                    f"round {round_number + 1} c={connections:<3} {system:<10}"
                    f"{result['requests_per_s']:>10.0f} req/s  p50 {result['p50_ms']:.3f} ms"
                    f"  p99 {result['p99_ms']:.3f} ms",
                    flush=True,
                )
    return points


def run_wrk(url: str, body: dict[str, str], connections: int, seconds: int) -> dict[str, Any]:
    command = [
        "taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
        "--latency", "-s", str(BENCH / "post.lua"), url,
    ]  # fmt: skip
    output = subprocess.run(
        command, env={**os.environ, **body}, capture_output=True, text=True, check=True
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _latency(output, "50%"),
        "p99_ms": _latency(output, "99%"),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def _latency(output: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    assert match is not None, output
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
    return float(match.group(1)) * scale


def batch_totals(metrics_url: str) -> tuple[float, float]:
    text = httpx.get(metrics_url).text
    total = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        for key in total:
            if line.startswith(f"servewell_batch_size_rows_{key}{{"):
                total[key] += float(line.rsplit(" ", 1)[1])
    return total["sum"], total["count"]


def measure_runtime(seconds: float = 3.0) -> dict[str, float]:
    """Rows/s of the demo model's runtime alone, in this process (pinned to core 0)."""
    from servewell.bootstrap import build_services
    from servewell.core.ref import ModelRef
    from servewell.runtime import sample_inputs
    from servewell.serving.loading import open_runtime
    from servewell.settings import load_settings

    os.sched_setaffinity(0, {int(SERVER_CORE)})
    services = build_services(load_settings())
    try:
        version = services.registry.resolve(ModelRef(MODEL))
        runtime = open_runtime(services, version)
        runtime.warm_up()
        results = {}
        for rows in (1, 32):
            batch = sample_inputs(runtime.describe(), rows)
            calls, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                runtime.predict(batch)
                calls += 1
            results[f"rows_per_s_batch_{rows}"] = calls * rows / (time.perf_counter() - started)
        runtime.close()
    finally:
        services.close()
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return results


# --- reporting -------------------------------------------------------------------------------


def summarize(
    points: list[dict[str, Any]], runtime: dict[str, float], args: argparse.Namespace
) -> dict[str, Any]:
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for point in points:
        cell = table.setdefault(point["system"], {}).setdefault(str(point["concurrency"]), {})
        for key in ("requests_per_s", "p50_ms", "p99_ms", "mean_batch_size", "errors"):
            if point.get(key) is not None:
                cell.setdefault(key, []).append(point[key])
    medians = {
        system: {
            c: {key: statistics.median(values) for key, values in cell.items()}
            for c, cell in by_c.items()
        }
        for system, by_c in table.items()
    }
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{os.cpu_count()} cores; server on core {SERVER_CORE}, wrk on core {LOAD_CORE}",
        "seconds_per_point": args.seconds,
        "rounds": args.rounds,
        "medians": medians,
        "runtime_alone": runtime,
        "points": points,
    }


def print_table(report: dict[str, Any]) -> None:
    medians = report["medians"]
    floor = medians["floor"]
    print(f"\nmedians of {report['rounds']} rounds, {report['seconds_per_point']} s a point")
    columns = ("req/s", "% floor", "p50 ms", "p99 ms", "batch")
    print(f"{'system':<10} {'c':>3} " + " ".join(f"{name:>8}" for name in columns))
    for system in SYSTEMS:
        for c, cell in medians[system].items():
            share = 100 * cell["requests_per_s"] / floor[c]["requests_per_s"]
            batch = cell.get("mean_batch_size")
            print(
                f"{system:<10} {c:>3} {cell['requests_per_s']:>8.0f} {share:>7.0f}% "
                f"{cell['p50_ms']:>8.3f} {cell['p99_ms']:>8.3f} "
                f"{'' if batch is None else f'{batch:.1f}':>8}"
            )
    for key, value in report["runtime_alone"].items():
        print(f"runtime alone, {key}: {value:,.0f}")


if __name__ == "__main__":
    main()
