"""What resilience costs when nothing fails, and what a hung model costs the rest (issue #13).

    .venv/bin/python bench/resilience.py     # under 3 minutes on 2 cores

It registers the demo model (``servewell demo``) and ``tests/python_models/hang.py`` (a
Python model whose calls with a negative ``x`` never return) in a temporary
SERVEWELL_HOME and starts, side by side, ``servewell serve`` processes (one worker each,
pinned to core 0; wrk on core 1, as in ``bench/run.py``, whose set-up and wrk driver
this uses):

  plain      the demo model with every default (the breaker is on by default)
  off        the same with its breaker off (``breaker.enabled: false``): nothing but the
             default deadline, which cannot be turned off
  resilient  ``timeout_ms: 1000``, the breaker given explicitly, ``retries: 0`` and a
             fallback chain (a default answer), none of which is ever triggered

measuring REST ``:predict`` of one row at concurrency 1, 16 and 64; then two servers of
the demo model *and* the hang model (``timeout_ms: 2000`` for hang):

  hung       while ``--hung`` requests to the hang model are kept in flight (each one
             sent again when it ends: a 504 once deadlines are enforced)
  calm       the same server and settings, no request to the hang model

measuring ``GET /v2/health/ready`` at concurrency 1 and the demo model at 1 and 64.
Each group runs in rounds that rotate the order of its systems; the tables show medians.
Response cache, API keys and rate limits are off everywhere (``run.PLAIN``).
Results: bench/results/resilience-<time>.json, with the targets of issue #13 checked
(resilient >= 97% of plain at c=64; health and demo p99 < 100 ms at c=1 while a model
hangs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from run import (
    BENCH,
    LOAD_CORE,
    MODEL,
    PLAIN,
    REST_PATH,
    free_port,
    register_demo,
    run_wrk,
    server_totals,
    start_servewell,
    totals_between,
    wait_ready,
    write_bodies,
)

PYTHON_MODELS = BENCH.parent / "tests" / "python_models"
HANG = "hang"
#: ``models.breast-cancer.*`` in the environment (names match with ``-`` and ``_`` alike).
DEMO_ENV = "SERVEWELL_MODELS__BREAST_CANCER__"
BREAKER = {  # the defaults, spelled out
    "enabled": True,
    "failures_to_open": 5,
    "error_rate_to_open": 0.5,
    "window_s": 30,
    "min_requests": 20,
    "cooldown_s": 10,
    "half_open_probes": 3,
}
DEFAULT_ANSWER = {"default": {"label": 0, "probabilities": [0.5, 0.5]}}
CONFIGS = {
    "plain": PLAIN,
    "off": {**PLAIN, DEMO_ENV + "BREAKER__ENABLED": "false"},
    "resilient": {
        **PLAIN,
        DEMO_ENV + "TIMEOUT_MS": "1000",
        DEMO_ENV + "RETRIES": "0",
        DEMO_ENV + "BREAKER": json.dumps(BREAKER),
        DEMO_ENV + "FALLBACKS": json.dumps([DEFAULT_ANSWER]),
    },
}
#: The two servers of the hang model: the same settings, only the load differs.
HANG_CONFIG = {
    **PLAIN,
    "SERVEWELL_MODELS__HANG__TIMEOUT_MS": "2000",
    # Its breaker would open on the timeouts and refuse at once: the requests would no
    # longer wait on the hung model, which is the point.
    "SERVEWELL_MODELS__HANG__BREAKER__ENABLED": "false",
    # A shutdown waits for a hung call up to the drain timeout (30 s by default).
    "SERVEWELL_SERVER__DRAIN_TIMEOUT_S": "3",
}
#: What the hang servers are measured on: (kind, concurrency).
HANG_POINTS = (("health", 1), ("rest", 1), ("rest", 64))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HEALTH_PATH = "/v2/health/ready"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="length of one point")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--hung", type=int, default=4, help="hang requests kept in flight")
    parser.add_argument("--skip-hang", action="store_true", help="only the cost rows")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    concurrency = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="servewell-resilience-") as folder:
        os.environ["SERVEWELL_HOME"] = str(Path(folder) / "home")
        row = register_demo()
        register_hang()
        body = write_bodies(Path(folder), row, "")["rest"]
        costs = measure_costs(Path(folder), body, concurrency, args)
        hang = None if args.skip_hang else measure_hang(Path(folder), body, args)
    report = summarize(costs, hang, args)
    print_report(report)
    out = BENCH / "results" / time.strftime("resilience-%Y%m%d-%H%M%S.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


def register_hang() -> None:
    servewell = Path(sys.executable).parent / "servewell"
    command = [
        str(servewell), "register", str(PYTHON_MODELS / "hang.py"), "--name", HANG,
        "--format", "python", "--trust", "--signature", str(PYTHON_MODELS / "column.json"),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)


# --- the two groups ---------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One thing to measure: wrk against ``url`` (POSTs of ``body``, or GETs), and the
    server's CPU time over the run (its process ``pid``)."""

    system: str
    kind: str  # "rest" (POST :predict) or "health" (GET /v2/health/ready)
    url: str
    body: dict[str, str]
    connections: int
    pid: int


def measure_costs(
    folder: Path, body: dict[str, str], concurrency: list[int], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """plain, off and resilient side by side, REST at each concurrency."""
    ports = {name: free_port() for name in CONFIGS}
    servers = {name: start_servewell(ports[name], folder / name, CONFIGS[name]) for name in CONFIGS}
    try:
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for url in urls.values():
            wait_ready(url + HEALTH_PATH)
        groups = [
            [
                Point(name, "rest", urls[name] + REST_PATH, body, c, servers[name].pid)
                for name in CONFIGS
            ]
            for c in concurrency
        ]
        return measure(groups, args, metrics={name: url + "/metrics" for name, url in urls.items()})
    finally:
        stop(list(servers.values()))


def measure_hang(folder: Path, body: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """hung and calm side by side: health and the demo model, while ``--hung`` requests
    to the hang model wait on the hung server."""
    names = ("hung", "calm")
    ports = {name: free_port() for name in names}
    serve = ("--models", f"{MODEL},{HANG}")
    servers = {
        name: start_servewell(ports[name], folder / name, HANG_CONFIG, serve) for name in names
    }
    keeper = None
    try:
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for url in urls.values():
            wait_ready(url + HEALTH_PATH)
        keeper = HungCalls(f"{urls['hung']}/v1/models/{HANG}:predict", args.hung)
        keeper.start()
        time.sleep(1.0)  # let them reach the model

        def point(name: str, kind: str, c: int) -> Point:
            path = HEALTH_PATH if kind == "health" else REST_PATH
            return Point(name, kind, urls[name] + path, body, c, servers[name].pid)

        groups = [[point(name, kind, c) for name in names] for kind, c in HANG_POINTS]
        points = measure(groups, args, keeper=keeper)
        return {"points": points, "hang_statuses": keeper.statuses}
    finally:
        if keeper is not None:
            keeper.stopping.set()
        stop(list(servers.values()))
        if keeper is not None:
            keeper.join()


def measure(
    groups: list[list[Point]],
    args: argparse.Namespace,
    metrics: dict[str, str] | None = None,
    keeper: HungCalls | None = None,
) -> list[dict[str, Any]]:
    """Each group's points in rounds, the order rotating each round (after a warm-up
    run of each server); a point with non-2xx answers ends the benchmark."""
    os.sched_setaffinity(0, {int(LOAD_CORE)})  # this process (and the keeper) off core 0
    for point in {point.system: point for group in groups for point in group}.values():
        run_wrk(point.url, point.body, 16, 1, post=point.kind == "rest")
    results = []
    for round_number in range(args.rounds):
        for group in groups:
            shift = round_number % len(group)
            for point in group[shift:] + group[:shift]:
                result = measure_point(point, args.seconds, (metrics or {}).get(point.system))
                result.update(round=round_number)
                if keeper is not None and point.system == "hung":
                    result["hang_in_flight"] = keeper.in_flight
                results.append(result)
                print(
                    f"round {round_number + 1} {point.kind:<6} c={point.connections:<3} "
                    f"{point.system:<10}{result['requests_per_s']:>8.0f} req/s  "
                    f"p50 {result['p50_ms']:.3f} ms  p99 {result['p99_ms']:.3f} ms  "
                    f"{result['cpu_us_per_request']:.0f} us CPU a request",
                    flush=True,
                )
    return results


def measure_point(point: Point, seconds: int, metrics_url: str | None) -> dict[str, Any]:
    """wrk's figures, the server's CPU time a request, the mean batch size."""
    before = server_totals(metrics_url) if metrics_url else None
    cpu_before = cpu_seconds(point.pid)
    result = run_wrk(point.url, point.body, point.connections, seconds, post=point.kind == "rest")
    cpu = cpu_seconds(point.pid) - cpu_before
    if before is not None and metrics_url is not None:
        result.update(totals_between(before, server_totals(metrics_url)))
    if result["errors"]:
        sys.exit(f"{point.system} {point.url} answered {result['errors']} non-2xx responses")
    result["cpu_us_per_request"] = cpu / (result["requests_per_s"] * seconds) * 1e6
    result.update(system=point.system, kind=point.kind, concurrency=point.connections)
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (from /proc): a request's
    cost that other tenants of the machine do not inflate as much as wall-clock rates."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class HungCalls(threading.Thread):
    """``count`` requests to the hang model always in flight: each is sent again when
    it ends (after its 504 at the deadline), or 0.1 s after an answer that came sooner
    (a refusal: never a busy loop against the server measured). Counts the answers by
    status."""

    def __init__(self, url: str, count: int) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.count = count
        self.stopping = threading.Event()
        self.statuses: dict[str, int] = {}
        self.in_flight = 0
        self._lock = threading.Lock()

    def run(self) -> None:
        callers = [
            threading.Thread(target=self._call_again, daemon=True) for _ in range(self.count)
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()

    def _call_again(self) -> None:
        with httpx.Client(timeout=600) as client:
            while not self.stopping.is_set():
                with self._lock:
                    self.in_flight += 1
                sent = time.monotonic()
                try:
                    status = str(client.post(self.url, json={"instances": [-1.0]}).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with self._lock:
                    self.in_flight -= 1
                    if not self.stopping.is_set():
                        self.statuses[status] = self.statuses.get(status, 0) + 1
                if time.monotonic() - sent < 0.1:
                    self.stopping.wait(0.1)


def stop(servers: list[subprocess.Popen[bytes]]) -> None:
    """Terminate each server; kill one that has not exited 15 s later (a thread stuck
    in the hang model may hold it)."""
    for server in servers:
        server.terminate()
    for server in servers:
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            print(f"server {server.pid} did not stop within 15 s of SIGTERM: killed")
            server.kill()
            server.wait(timeout=15)


# --- reporting ------------------------------------------------------------------------

MEASURES = ("requests_per_s", "p50_ms", "p99_ms", "cpu_us_per_request", "mean_batch_size")


def medians_of(points: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """{"<system> <kind>": {c: {measure: median over the rounds}}}."""
    values: dict[str, dict[str, dict[str, list[float]]]] = {}
    for point in points:
        by_c = values.setdefault(f"{point['system']} {point['kind']}", {})
        cell = by_c.setdefault(str(point["concurrency"]), {})
        for key in (*MEASURES, "hang_in_flight"):
            if point.get(key) is not None:
                cell.setdefault(key, []).append(point[key])
    return {
        row: {
            c: {key: statistics.median(vs) for key, vs in cell.items()} for c, cell in by_c.items()
        }
        for row, by_c in values.items()
    }


def paired_ratios(
    points: list[dict[str, Any]], system: str, against: str
) -> dict[str, dict[str, float]]:
    """Per concurrency, the median over the rounds of ``system``'s req/s and CPU time a
    request as a share of ``against``'s *in the same round* (measured minutes apart at
    most, so a slow spell of the machine hits both)."""
    by_key = {(p["system"], p["concurrency"], p["round"]): p for p in points}
    ratios: dict[str, dict[str, list[float]]] = {}
    for (name, c, round_number), point in by_key.items():
        other = by_key.get((against, c, round_number))
        if name != system or other is None:
            continue
        cell = ratios.setdefault(str(c), {})
        for key in ("requests_per_s", "cpu_us_per_request"):
            cell.setdefault(key, []).append(point[key] / other[key])
    return {
        c: {key: statistics.median(values) for key, values in cell.items()}
        for c, cell in ratios.items()
    }


def summarize(
    costs: list[dict[str, Any]], hang: dict[str, Any] | None, args: argparse.Namespace
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{os.cpu_count()} cores; servers on core 0, wrk on core {LOAD_CORE}",
        "load_average": os.getloadavg(),
        "seconds_per_point": args.seconds,
        "rounds": args.rounds,
        "configs": {
            name: dict(sorted(set(env.items()) - set(PLAIN.items())))
            for name, env in CONFIGS.items()
        },
        "costs": medians_of(costs),
        "paired": {
            f"{system} / {against}": paired_ratios(costs, system, against)
            for system, against in (("resilient", "plain"), ("resilient", "off"), ("plain", "off"))
        },
        "points": costs,
    }
    if hang is not None:
        report["hang"] = medians_of(hang["points"])
        report["hang_statuses"] = hang["hang_statuses"]
        report["hang_points"] = hang["points"]
    report["targets"] = check_targets(report)
    return report


def check_targets(report: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Issue #13's: the resilient server's c=64 req/s >= 97% of plain's (the median of
    the rounds' ratios); health and the demo model at c=1 answer in < 100 ms (p99)
    while a model hangs."""
    checks: dict[str, tuple[str, bool]] = {}
    paired = report["paired"]["resilient / plain"].get("64")
    if paired is not None:
        ratio = paired["requests_per_s"]
        checks["resilient c=64 req/s >= 97% of plain"] = (f"{ratio:.1%}", ratio >= 0.97)
    hang = report.get("hang", {})
    for row in ("hung health", "hung rest"):
        point = hang.get(row, {}).get("1")
        if point is not None:
            p99 = point["p99_ms"]
            checks[f"{row} c=1 p99 < 100 ms while a model hangs"] = (f"{p99:.2f} ms", p99 < 100)
    return checks


def print_report(report: dict[str, Any]) -> None:
    print(f"\nmedians of {report['rounds']} rounds, {report['seconds_per_point']} s a point")
    columns = ("req/s", "p50 ms", "p99 ms", "CPU us", "batch")
    print(f"{'row':<16} {'c':>3} " + " ".join(f"{name:>8}" for name in columns))
    for table in (report["costs"], report.get("hang", {})):
        for row, by_c in table.items():
            for c, cell in by_c.items():
                print(
                    f"{row:<16} {c:>3} {cell['requests_per_s']:>8.0f} {cell['p50_ms']:>8.3f} "
                    f"{cell['p99_ms']:>8.3f} {cell['cpu_us_per_request']:>8.1f} "
                    f"{cell.get('mean_batch_size', 0):>8.1f}"
                )
    print("\nratios, median of the rounds' (req/s; CPU time a request)")
    for pair, by_c in report["paired"].items():
        cells = "  ".join(
            f"c={c}: {cell['requests_per_s']:.1%}; {cell['cpu_us_per_request']:.1%}"
            for c, cell in by_c.items()
        )
        print(f"  {pair:<20} {cells}")
    if "hang_statuses" in report:
        print(f"the hang model's answers meanwhile: {report['hang_statuses']}")
    print("\ntargets (issue #13)")
    for name, (measured, met) in report["targets"].items():
        print(f"  {'met   ' if met else 'MISSED'} {name}: {measured}")


if __name__ == "__main__":
    main()
