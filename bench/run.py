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

and, at concurrency 64, REST with the protections on (issue #6), each on its own server:

  rest_protected  API key + rate limit (generous: nothing is refused) + response cache,
                  in-process backends; every request a different body (all cache misses)
  rest_redis      the same with the Redis rate limiter and Redis response cache
                  (SERVEWELL_REDIS_URL, default redis://127.0.0.1:6379/0)
  rest_cache_hit  the in-process protected server given one fixed body: all cache hits
                  (also at concurrency 1)

With ``--baseline SRC`` (a source folder of another servewell checkout, e.g. a
``git worktree`` of the commit before a change), the plain and in-process protected
servers run a second time from that source, side by side in the same rounds: rows
``rest@base``, ``rest_protected@base``, ``rest_cache_hit@base`` (``--only`` narrows the
systems measured, e.g. ``--only rest,rest_protected,rest_cache_hit,floor``).

It measures in rounds that interleave the systems (their order rotates each round), and reports the
median of the rounds; it also reads the mean batch size and the cache hits and misses of
each servewell run from the server's own metrics, and times the in-process runtime alone
(rows/s for 1 row and for batches of 32). It prints a table and writes
bench/results/<time>.json.
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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

BENCH = Path(__file__).resolve().parent
MODEL = "breast-cancer"
SYSTEMS = ("rest", "v2_json", "v2_binary", "floor")
PROTECTED = ("rest_protected", "rest_redis", "rest_cache_hit")
#: Where each system is measured besides concurrency 64 (the protected rows' own).
PROTECTED_ALSO_AT = {"rest_cache_hit": (1,)}
SERVER_CORE, LOAD_CORE = "0", "1"
REDIS_URL = os.environ.get("SERVEWELL_REDIS_URL", "redis://127.0.0.1:6379/0")
#: Validation, metrics, access logs and batching on; API keys, rate limits and the
#: response cache off: the floor has none of them, and a cache would answer every repeat
#: of the benchmark's one body without the model.
PLAIN = {
    "SERVEWELL_AUTH__ENABLED": "false",
    "SERVEWELL_RATE_LIMITS__ENABLED": "false",
    "SERVEWELL_CACHE__ENABLED": "false",
}
#: Everything on: keys, a rate limit no benchmark reaches, the response cache.
PROTECTED_MEMORY = {
    "SERVEWELL_AUTH__ENABLED": "true",
    "SERVEWELL_RATE_LIMITS__ENABLED": "true",
    "SERVEWELL_RATE_LIMITS__BACKEND": "memory",
    "SERVEWELL_RATE_LIMITS__DEFAULT_RATE": "1000000000/minute",
    "SERVEWELL_CACHE__ENABLED": "true",
    "SERVEWELL_CACHE__BACKEND": "memory",
}
#: The same on the shared Redis; short-lived cache entries (the Redis is shared: the
#: benchmark never flushes it, it deletes only its own rate-limit bucket).
PROTECTED_REDIS = {
    **PROTECTED_MEMORY,
    "SERVEWELL_RATE_LIMITS__BACKEND": "redis",
    "SERVEWELL_CACHE__BACKEND": "redis",
    "SERVEWELL_CACHE__TTL_S": "30",
    "SERVEWELL_REDIS_URL": REDIS_URL,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one point")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--baseline", type=Path, help="src folder of the servewell to compare against"
    )
    parser.add_argument("--only", help="comma-separated systems to measure (floor always)")
    args = parser.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="servewell-bench-") as folder:
        home = Path(folder) / "home"
        os.environ["SERVEWELL_HOME"] = str(home)
        row = register_demo()
        key_name, token = create_key()
        bodies = write_bodies(Path(folder), row, token)
        server_of = {
            "rest": "plain", "v2_json": "plain", "v2_binary": "plain", "floor": "floor",
            "rest_protected": "memory", "rest_redis": "redis", "rest_cache_hit": "memory",
        }  # fmt: skip
        configs = {"plain": PLAIN, "memory": PROTECTED_MEMORY, "redis": PROTECTED_REDIS}
        if args.baseline is not None:
            for system in BASELINED:
                server_of[system + BASE] = server_of[system] + BASE
                bodies[system + BASE] = bodies[system]
            for name in ("plain", "memory"):
                configs[name + BASE] = {
                    **configs[name],
                    "PYTHONPATH": str(args.baseline.resolve()),
                }
        chosen = selected_systems(server_of, args.only)
        server_of = {system: server_of[system] for system in chosen}
        needed = sorted(set(server_of.values()) - {"floor"})
        ports = {name: free_port() for name in [*needed, "floor"]}
        servers = [
            *(start_servewell(ports[name], Path(folder) / name, configs[name]) for name in needed),
            start_floor(ports["floor"]),
        ]
        try:
            for name in needed:
                wait_ready(f"http://127.0.0.1:{ports[name]}/v2/health/ready")
            wait_ready(f"http://127.0.0.1:{ports['floor']}/", post=bodies["rest"])
            paths = {"v2_json": V2_PATH, "v2_binary": V2_PATH, "floor": "/"}
            urls = {
                system: f"http://127.0.0.1:{ports[server]}"
                + paths.get(system.removesuffix(BASE), REST_PATH)
                for system, server in server_of.items()
            }
            metrics_urls = {
                system: f"http://127.0.0.1:{ports[server]}/metrics"
                for system, server in server_of.items()
                if server != "floor"
            }
            for system in server_of:  # warm every path up
                run_wrk(urls[system], bodies[system], 16, 1)
            points = measure(urls, bodies, metrics_urls, concurrency, args)
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
            if "redis" in needed:
                forget_redis_bucket(key_name)
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


REST_PATH = f"/v1/models/{MODEL}:predict"
#: The systems measured a second time from ``--baseline``'s source, and their suffix.
BASELINED = ("rest", "rest_protected", "rest_cache_hit")
BASE = "@base"


def selected_systems(server_of: dict[str, str], only: str | None) -> list[str]:
    """The systems to measure: all, or those ``--only`` names (with their baselines)."""
    if only is None:
        return list(server_of)
    names = {name.strip() for name in only.split(",")} | {"floor"}
    unknown = names - set(server_of)
    if unknown:
        sys.exit(f"--only: unknown systems {sorted(unknown)}; known: {sorted(server_of)}")
    return [system for system in server_of if system.removesuffix(BASE) in names]


V2_PATH = f"/v2/models/{MODEL}/infer"


def create_key() -> tuple[str, str]:
    """A ``predict`` key in the benchmark's registry: its name and its token."""
    from servewell.bootstrap import build_services
    from servewell.registry.keys import ApiKeyStore
    from servewell.settings import load_settings

    services = build_services(load_settings())
    try:
        name = f"bench-{os.urandom(4).hex()}"
        _, token = ApiKeyStore(services.registry).create(name, scopes=("predict",))
    finally:
        services.close()
    return name, token


def forget_redis_bucket(key_name: str) -> None:
    """Delete the rate-limit bucket of the benchmark's key (its own, nothing else)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        for name in client.scan_iter(match=f"servewell:rl:key:{key_name}*"):
            client.delete(name)
    except redis.RedisError as exc:
        print(f"could not delete the benchmark's rate-limit bucket: {exc}")
    finally:
        client.close()


def write_bodies(folder: Path, row: list[float], token: str) -> dict[str, dict[str, str]]:
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
    folder.mkdir(parents=True, exist_ok=True)
    specs = {}
    for name, (content, content_type, header_length) in bodies.items():
        path = folder / f"{name}.body"
        path.write_bytes(content)
        specs[name] = {
            "BENCH_BODY": str(path),
            "BENCH_CONTENT_TYPE": content_type,
            "BENCH_HEADER_LENGTH": header_length,
            "BENCH_TOKEN": "",
            "BENCH_VARY": "",
        }
    protected = {**specs["rest"], "BENCH_TOKEN": token}
    # BENCH_VARY "new": run_wrk gives each run a fresh start, so no body repeats.
    specs["rest_protected"] = specs["rest_redis"] = {**protected, "BENCH_VARY": "new"}
    specs["rest_cache_hit"] = protected
    return specs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_servewell(
    port: int, folder: Path, settings: dict[str, str], serve_args: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    servewell = Path(sys.executable).parent / "servewell"
    folder.mkdir(parents=True, exist_ok=True)
    log = (folder / "servewell.log").open("wb")
    env = {**os.environ, **settings}
    return subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, str(servewell), "serve", "--port", str(port), *serve_args],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
        env=env,
    )


@dataclass
class Server:
    """A ``servewell serve`` a benchmark started."""

    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def running_servers(
    folder: Path,
    settings_of: Mapping[str, Mapping[str, str]],
    prepare: Callable[[str], None] | None = None,
) -> Iterator[dict[str, Server]]:
    """One ready ``servewell serve`` per name (its folder ``folder/<name>``, its
    settings), after ``prepare(name)`` when given (which registers what that server
    serves); every one is stopped after."""
    servers: dict[str, Server] = {}
    try:
        for name, settings in settings_of.items():
            if prepare is not None:
                prepare(name)
            port = free_port()
            process = start_servewell(port, folder / name, dict(settings))
            servers[name] = Server(f"http://127.0.0.1:{port}", process)
            wait_ready(f"{servers[name].url}/v2/health/ready")
        yield servers
    finally:
        for server in servers.values():
            server.process.terminate()
            server.process.wait(timeout=60)


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
    metrics_urls: dict[str, str],
    concurrency: list[int],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    points = []
    for round_number in range(args.rounds):
        for connections in concurrency:
            systems = tuple(system for system in systems_at(connections) if system in urls)
            shift = round_number % len(systems)
            for system in systems[shift:] + systems[:shift]:
                metrics_url = metrics_urls.get(system)
                before = server_totals(metrics_url) if metrics_url else None
                result = run_wrk(urls[system], bodies[system], connections, args.seconds)
                if metrics_url is not None and before is not None:
                    result.update(totals_between(before, server_totals(metrics_url)))
                if result["errors"]:
                    sys.exit(f"{system} answered {result['errors']} non-2xx responses")
                result.update(system=system, concurrency=connections, round=round_number)
                points.append(result)
                print(
                    f"round {round_number + 1} c={connections:<3} {system:<20}"
                    f"{result['requests_per_s']:>10.0f} req/s  p50 {result['p50_ms']:.3f} ms"
                    f"  p99 {result['p99_ms']:.3f} ms",
                    flush=True,
                )
    return points


def systems_at(connections: int) -> tuple[str, ...]:
    """What is measured at this concurrency: every plain system; the protected ones at 64
    (and where PROTECTED_ALSO_AT says); each with its baseline beside it."""
    systems = SYSTEMS + tuple(
        system
        for system in PROTECTED
        if connections == 64 or connections in PROTECTED_ALSO_AT.get(system, ())
    )
    return systems + tuple(system + BASE for system in systems if system in BASELINED)


def run_wrk(
    url: str, body: dict[str, str], connections: int, seconds: int, *, post: bool = True
) -> dict[str, Any]:
    """One wrk run against ``url``: POSTs of ``body`` (``post.lua``), or plain GETs."""
    script = ["-s", str(BENCH / "post.lua")] if post else []
    command = [
        "taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
        "--latency", *script, url,
    ]  # fmt: skip
    if body.get("BENCH_VARY"):
        # A fresh start for the varied feature (n + 0.5 stays exact in FP32 below 2^23,
        # so every body validates to different inputs).
        base = 1_000_000 + int.from_bytes(os.urandom(4)) % 6_000_000
        body = {**body, "BENCH_VARY": str(base)}
    output = subprocess.run(
        command, env={**os.environ, **body}, capture_output=True, text=True, check=True
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": wrk_latency_ms(output, "50%"),
        "p99_ms": wrk_latency_ms(output, "99%"),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def wrk_latency_ms(output: str, percentile: str) -> float:
    """A percentile of wrk's (or wrk2's) --latency table, in ms."""
    match = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    assert match is not None, output
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
    return float(match.group(1)) * scale


def server_totals(metrics_url: str) -> dict[str, float]:
    """Rows and model calls (batches), cache hits and misses so far, from /metrics."""
    text = httpx.get(metrics_url).text
    total = {"rows": 0.0, "batches": 0.0, "hits": 0.0, "misses": 0.0}
    prefixes = {
        "rows": "servewell_batch_size_rows_sum{",
        "batches": "servewell_batch_size_rows_count{",
        "hits": "servewell_cache_requests_total{",
        "misses": "servewell_cache_requests_total{",
    }
    for line in text.splitlines():
        for key, prefix in prefixes.items():
            if not line.startswith(prefix):
                continue
            if key == "hits" and 'outcome="hit"' not in line:
                continue
            if key == "misses" and 'outcome="miss"' not in line:
                continue
            total[key] += float(line.rsplit(" ", 1)[1])
    return total


def totals_between(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    change = {key: after[key] - before[key] for key in before}
    looked_up = change["hits"] + change["misses"]
    return {
        "mean_batch_size": change["rows"] / change["batches"] if change["batches"] else None,
        "cache_hit_ratio": change["hits"] / looked_up if looked_up else None,
    }


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
        for key in (
            "requests_per_s", "p50_ms", "p99_ms", "mean_batch_size", "cache_hit_ratio", "errors"
        ):  # fmt: skip
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
        "targets": check_targets(medians),
        "runtime_alone": runtime,
        "points": points,
    }


def print_table(report: dict[str, Any]) -> None:
    medians = report["medians"]
    floor, rest = medians["floor"], medians.get("rest", {})
    print(f"\nmedians of {report['rounds']} rounds, {report['seconds_per_point']} s a point")
    columns = ("req/s", "% floor", "% rest", "% base", "p50 ms", "p99 ms", "batch", "hits")
    print(f"{'system':<20} {'c':>3} " + " ".join(f"{name:>8}" for name in columns))
    for system in medians:
        for c, cell in medians[system].items():
            rate = cell["requests_per_s"]
            base = medians.get(system + BASE, {}).get(c)
            print(
                f"{system:<20} {c:>3} {rate:>8.0f} {_share(rate, floor.get(c))} "
                f"{_share(rate, rest.get(c))} {_share(rate, base)} "
                f"{cell['p50_ms']:>8.3f} {cell['p99_ms']:>8.3f} "
                f"{_optional(cell.get('mean_batch_size'), '{:.1f}'):>8}"
                f"{_optional(cell.get('cache_hit_ratio'), '{:.0%}'):>9}"
            )
    for key, value in report["runtime_alone"].items():
        print(f"runtime alone, {key}: {value:,.0f}")
    print("\ntargets (issues #3 and #6)")
    for name, (measured, met) in report["targets"].items():
        print(f"  {'met   ' if met else 'MISSED'} {name}: {measured}")


def _share(rate: float, other: dict[str, Any] | None) -> str:
    """``rate`` as a percentage of another point's req/s, padded; blank without one."""
    return f"{100 * rate / other['requests_per_s']:>7.0f}%" if other else " " * 8


def _optional(value: float | None, form: str) -> str:
    return "" if value is None else form.format(value)


def check_targets(medians: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Each target of issues #3 and #6 that this run measured: what was measured, and
    whether it was met (targets whose systems were not measured are left out)."""
    floor = medians["floor"]

    def cell(system: str, c: str) -> dict[str, Any] | None:
        return medians.get(system, {}).get(c)

    checks: dict[str, tuple[str, bool]] = {}
    for system in ("rest", "v2_json", "v2_binary"):
        point = cell(system, "64")
        if point is None or "64" not in floor:
            continue
        share = point["requests_per_s"] / floor["64"]["requests_per_s"]
        checks[f"{system} c=64 req/s >= 40% of floor"] = (f"{share:.0%}", share >= 0.4)
        ratio = point["p99_ms"] / floor["64"]["p99_ms"]
        checks[f"{system} c=64 p99 <= 3x floor"] = (f"{ratio:.1f}x", ratio <= 3)
    rest64 = cell("rest", "64")
    if rest64 is not None:
        batch = rest64.get("mean_batch_size") or 0.0
        checks["rest c=64 mean batch > 4"] = (f"{batch:.1f}", batch > 4)
        for system, share in (("rest_protected", 0.85), ("rest_redis", 0.60)):
            point = cell(system, "64")
            if point is not None:
                ratio = point["requests_per_s"] / rest64["requests_per_s"]
                checks[f"{system} c=64 req/s >= {share:.0%} of rest"] = (
                    f"{ratio:.0%}",
                    ratio >= share,
                )
    for c, point in medians.get("rest_cache_hit", {}).items():
        ratio = point["p50_ms"] / floor[c]["p50_ms"]
        checks[f"rest_cache_hit c={c} p50 <= 1.2x floor p50"] = (f"{ratio:.2f}x", ratio <= 1.2)
    for system in ("rest", "v2_json", "v2_binary"):
        point = cell(system, "1")
        if point is not None and "1" in floor:
            ratio = point["p50_ms"] / floor["1"]["p50_ms"]
            checks[f"{system} c=1 p50 <= 2x floor"] = (f"{ratio:.1f}x", ratio <= 2)
    return checks


def median_point(points: list[dict[str, Any]]) -> dict[str, float]:
    """Each figure of several rounds' points (one system at one concurrency): its median."""
    return {key: statistics.median(point[key] for point in points) for key in points[0]}


if __name__ == "__main__":
    main()
