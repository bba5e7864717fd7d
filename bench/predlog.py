"""What the prediction log costs (issue #20): REST at c=64 with every prediction logged
(sample rate 1.0, the default) into the registry database, into Parquet files
(``monitoring.store: parquet``), and with logging off (sample rate 0), side by side.

    .venv/bin/python bench/predlog.py          # about 90 s on 2 cores

It registers the demo model (``servewell demo``: breast-cancer, ONNX, one row of 30 FP32
features a request, logged in full) in a temporary SERVEWELL_HOME (SQLite) and starts
three ``servewell serve`` processes as bench/run.py's plain server (one worker, keys,
rate limits and the response cache off), pinned to core 0 with wrk on core 1; they
differ only in ``models.breast-cancer.monitoring.sample_rate`` and ``monitoring.store``.
Points alternate between them in rounds; it prints medians, each logged server's share
of the one that logs nothing, the server process's CPU time per answered request (all
its threads, from ``/proc``: less swayed by other load on the machine than
requests/s) with the event loop thread's share of it, context switches and page faults
a request (what the GIL's hand-overs and memory the kernel maps would cost), and the
rows the log wrote and dropped (from the server's own metrics).

With ``--baseline SRC`` (the src folder of another servewell checkout, e.g. a ``git
worktree`` of the commit before a change) one more server, ``logged@base``, logs every
prediction from that source, in the same rounds.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from run import PLAIN, REST_PATH, free_port, register_demo, run_wrk, start_servewell, wait_ready
from run import write_bodies as run_bodies

RATE = "SERVEWELL_MODELS__BREAST_CANCER__MONITORING__SAMPLE_RATE"
STORE = "SERVEWELL_MONITORING__STORE"
SERVERS = {
    "logged": {**PLAIN, RATE: "1.0"},
    "logged-parquet": {**PLAIN, RATE: "1.0", STORE: "parquet"},
    "off": {**PLAIN, RATE: "0"},
}
BASE = "logged@base"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one point")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--baseline", type=Path, help="src folder of the servewell to compare")
    args = parser.parse_args()
    servers = dict(SERVERS)
    if args.baseline is not None:
        servers[BASE] = {**SERVERS["logged"], "PYTHONPATH": str(args.baseline.resolve())}
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="servewell-bench-predlog-") as folder:
        os.environ["SERVEWELL_HOME"] = str(Path(folder) / "home")
        body = run_bodies(Path(folder), register_demo(), "")["rest"]
        urls, processes = {}, []
        try:
            for name, settings in servers.items():
                port = free_port()
                processes.append(start_servewell(port, Path(folder) / name, settings))
                urls[name] = f"http://127.0.0.1:{port}"
                wait_ready(f"{urls[name]}/v2/health/ready")
            pids = dict(zip(servers, (process.pid for process in processes), strict=True))
            points = measure(urls, pids, body, args)
            logged = {name: log_totals(urls[name]) for name in servers if name != "off"}
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=60)
    print_table(points, logged, args.concurrency)


def stat_fields(path: str) -> list[str]:
    """The fields of a ``/proc`` ``stat`` file after the command's name (which may hold
    spaces): ``[7]`` minor faults, ``[11]`` user and ``[12]`` system time in ticks."""
    return Path(path).read_text().rsplit(")", 1)[1].split()


def cpu_s(pid: int, thread: int | None = None) -> float:
    """User and system CPU time of process ``pid`` (all its threads) so far, or of its
    thread ``thread`` (the main thread, the event loop's, is ``pid``)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    fields = stat_fields(path)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def faults(pid: int) -> int:
    """Minor page faults of process ``pid`` so far (memory the kernel had to map)."""
    return int(stat_fields(f"/proc/{pid}/stat")[7])


def switches(pid: int) -> int:
    """Context switches of process ``pid``'s threads so far (voluntary and not): each
    hand-over of the GIL between the event loop and the flush thread on one core is one."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        with open(status) as lines:
            total += sum(int(line.split()[1]) for line in lines if "ctxt_switches" in line)
    return total


#: What a point reports per answered request, from the server's counters: its CPU in
#: µs, the event loop thread's share of it, context switches and page faults.
COUNTERS = {
    "cpu_us": lambda pid: cpu_s(pid) * 1e6,
    "loop_us": lambda pid: cpu_s(pid, pid) * 1e6,
    "switches": switches,
    "faults": faults,
}


def measure(
    urls: dict[str, str], pids: dict[str, int], body: dict[str, str], args: Any
) -> dict[str, list[Any]]:
    names = list(urls)
    for name in names:  # warm up
        run_wrk(urls[name] + REST_PATH, body, 16, 1)
    points: dict[str, list[Any]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        shift = round_number % len(names)  # each server first in turn
        order = names[shift:] + names[:shift]
        for name in order:
            pid = pids[name]
            before = {key: read(pid) for key, read in COUNTERS.items()}
            point = run_wrk(urls[name] + REST_PATH, body, args.concurrency, args.seconds)
            answered = point["requests_per_s"] * args.seconds
            for key, read in COUNTERS.items():
                point[key] = (read(pid) - before[key]) / answered
            points[name].append(point)
    return points


def log_totals(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics").text
    totals = {}
    for name, pattern in (
        ("written", r"^servewell_predlog_written_total (\S+)$"),
        ("dropped", r'^servewell_predlog_dropped_total\{reason="full"\} (\S+)$'),
    ):
        match = re.search(pattern, text, re.MULTILINE)
        totals[name] = float(match.group(1)) if match else 0.0
    return totals


def paired_ratios(runs: list[Any], off_runs: list[Any]) -> list[tuple[float, float]]:
    """Each round's requests/s and off's CPU per request as shares of off's in the same
    round: the machine's speed drifts by tens of percent over a minute here, and a round's
    points are seconds apart, so the pairs resolve what the medians of each do not."""
    return [
        (run["requests_per_s"] / off["requests_per_s"], off["cpu_us"] / run["cpu_us"])
        for run, off in zip(runs, off_runs, strict=True)
    ]


def print_table(points: dict[str, list[Any]], logged: dict[str, dict[str, float]], c: int) -> None:
    median = {
        name: {
            key: statistics.median(p[key] for p in runs)
            for key in ("requests_per_s", "p50_ms", "p99_ms", *COUNTERS)
        }
        for name, runs in points.items()
    }
    print(
        f"| server (REST, c={c}) | req/s | p50 ms | p99 ms | CPU µs/request | of it, the "
        "event loop's thread | context switches/request | page faults/request | rounds (req/s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, cell in median.items():
        rounds = ", ".join(f"{p['requests_per_s']:,.0f}" for p in points[name])
        print(
            f"| {name} | {cell['requests_per_s']:,.0f} | {cell['p50_ms']:.2f} | "
            f"{cell['p99_ms']:.2f} | {cell['cpu_us']:.0f} | {cell['loop_us']:.0f} | "
            f"{cell['switches']:.3f} | {cell['faults']:.3f} | {rounds} |"
        )
    off = median["off"]
    for name, totals in logged.items():
        share = median[name]["requests_per_s"] / off["requests_per_s"]
        cpu = off["cpu_us"] / median[name]["cpu_us"]
        print(
            f"\n{name} / off: {share:.1%} of the requests/s (target >= 90%); off's CPU per "
            f"request / {name}'s: {cpu:.1%} (the requests/s a busy core keeps)"
        )
        paired = sorted(paired_ratios(points[name], points["off"]))
        print(
            f"{name} / off, paired by round (median [range] of {len(paired)}): requests/s "
            f"{statistics.median(r for r, _ in paired):.1%} "
            f"[{min(r for r, _ in paired):.0%}, {max(r for r, _ in paired):.0%}]; CPU "
            f"{statistics.median(c for _, c in paired):.1%} "
            f"[{min(c for _, c in paired):.0%}, {max(c for _, c in paired):.0%}]"
        )
        print(
            f"{name}: rows written {totals['written']:,.0f}, "
            f"dropped (buffer full) {totals['dropped']:,.0f}"
        )


if __name__ == "__main__":
    main()
