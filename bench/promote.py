"""What a promote costs while serving (issue #14): p99 during promotes under load against
steady state, and the server's memory before, during and after them.

    .venv/bin/python bench/promote.py          # about 60 s on 2 cores

It registers the demo model (``servewell demo``: breast-cancer, ONNX) and its ONNX file
again as version 2 (``bench/traffic.py``'s), points ``production`` at 1 and starts one
``servewell serve --models breast-cancer`` (one worker; response cache, keys and rate
limits off, as bench/run.py's plain server; pinned to core 0, wrk to core 1). REST at
concurrency 32: a steady point, then a point of the same length during which the
``production`` alias moves 1 -> 2 -> 1 ... (``set_alias``, then ``rollback``), each move
waited for until the server answers with its version and holds only it. RSS is the
server's (and its children's, from /proc) before, after each move, and after the
promotes. Targets: p99 during promotes at most 2x steady; RSS after within 10% of
before.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from run import (
    MODEL,
    PLAIN,
    REST_PATH,
    free_port,
    register_demo,
    run_wrk,
    start_servewell,
    wait_ready,
    write_bodies,
)
from traffic import register_second_version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of each point")
    parser.add_argument("--moves", type=int, default=20, help="alias moves at least")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="servewell-bench-promote-") as folder:
        home = Path(folder) / "home"
        os.environ["SERVEWELL_HOME"] = str(home)
        row = register_demo()
        register_second_version()
        registry = _registry()
        registry.set_alias(MODEL, "production", 1)
        body = write_bodies(Path(folder) / "bodies", row, "")["rest"]
        port = free_port()
        process = start_servewell(port, Path(folder), PLAIN, ("--models", MODEL))
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(f"{url}/v2/health/ready")
            run_wrk(url + REST_PATH, body, 16, 2)  # warm up
            before_mb = rss_mb(process.pid)
            steady = run_wrk(url + REST_PATH, body, args.concurrency, args.seconds)
            during, samples = promotes_under_load(url, body, registry, process.pid, args)
            time.sleep(2)
            after_mb = rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=60)
    report(steady, during, before_mb, samples, after_mb, args.concurrency)


def _registry():  # type: ignore[no-untyped-def]
    from servewell.bootstrap import build_services
    from servewell.settings import load_settings

    return build_services(load_settings()).registry


def promotes_under_load(url, body, registry, pid, args):  # type: ignore[no-untyped-def]
    """A wrk point while the alias moves back and forth; its result and RSS per move."""
    result: dict[str, object] = {}
    load = threading.Thread(
        target=lambda: result.update(run_wrk(url + REST_PATH, body, args.concurrency, args.seconds))
    )
    load.start()
    samples: list[float] = []
    time.sleep(1)
    while load.is_alive() or len(samples) < args.moves:
        target = 2 if len(samples) % 2 == 0 else 1
        if target == 2:
            registry.set_alias(MODEL, "production", 2)
        else:
            registry.rollback(MODEL)
        _wait_served(url, target)
        samples.append(rss_mb(pid))
    load.join()
    return result, samples


def _wait_served(url: str, version: int) -> None:
    """Until the bare name answers with ``version`` and it is the only one loaded."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/v1/models/{MODEL}", timeout=30).json()
        loaded = [int(v["version"]) for v in status["model_version_status"]]
        answered = httpx.post(url + REST_PATH, json=_ROW, timeout=30).json().get("version")
        if loaded == [version] and answered == version:
            return
        time.sleep(0.05)
    sys.exit(f"version {version} was never served alone")


_ROW = {"instances": [[0.0] * 30]}


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (workers, model processes)."""
    total_kb, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            lines = Path(f"/proc/{current}/status").read_text().splitlines()
            total_kb += int(next(ln for ln in lines if ln.startswith("VmRSS")).split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total_kb / 1024


def report(steady, during, before_mb, samples, after_mb, concurrency):  # type: ignore[no-untyped-def]
    ratio = during["p99_ms"] / steady["p99_ms"]
    print("| point | c | req/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, point in (("steady", steady), (f"{len(samples)} alias moves", during)):
        print(
            f"| {name} | {concurrency} | {point['requests_per_s']:,.0f} | "
            f"{point['p50_ms']:.2f} | {point['p99_ms']:.2f} | {point['errors']} |"
        )
    print(f"\np99 during / steady: {ratio:.2f}x (target <= 2x)")
    print(
        f"RSS MB: before {before_mb:.1f}; after the first move {samples[0]:.1f}, the "
        f"last {samples[-1]:.1f} (min {min(samples):.1f}, max {max(samples):.1f}); "
        f"after {after_mb:.1f} "
        f"({100 * (after_mb / before_mb - 1):+.1f}%, target within 10%)"
    )


if __name__ == "__main__":
    main()
