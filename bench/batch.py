"""Batch prediction (issue #15), side by side in one run: a CSV of the demo model's rows
scored by the runtime alone in process, by ``servewell batch`` (in process, the job
core), and as a job of a running server (the embedded executor), at the same chunk and
batch size; rows/s and peak RSS of each, at two file sizes (RSS must not grow with the
file: every path streams).

    .venv/bin/python bench/batch.py                   # 200,000 and 1,000,000 rows
    .venv/bin/python bench/batch.py --rows 50000 200000
    .venv/bin/python bench/batch.py --online --rows 1000000  # REST p99 at c=16, and during a job

It registers the demo model (``servewell demo``: breast-cancer, ONNX, 30 FP32
features) in a temporary SERVEWELL_HOME (SQLite). The CSV repeats the model's 569 rows
with a ``key`` id column. The runtime alone loads the same ONNX file and calls it on
batches of ``--batch-rows`` rows, in two ways: on arrays built before the clock starts
(the model's own speed) and reading the CSV with the csv module as it goes (the floor
of any CSV job: parsing plus the model, nothing else). ``servewell batch`` and the
server job run the whole path: reading, validation as a request, the model through its
batch queue, output rows, results written per chunk (the server job also uploads the
file, counts its rows and records each chunk). The server job's rows/s is the job's own
(rows over its started-to-finished time); peak RSS is each process's VmHWM.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from run import (
    PLAIN,
    REST_PATH,
    free_port,
    register_demo,
    run_wrk,
    start_servewell,
    wait_ready,
    write_bodies,
)

MODEL = "breast-cancer"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    parser.add_argument("--batch-rows", type=int, default=64, help="the model's batch size")
    parser.add_argument(
        "--online", action="store_true", help="only: REST p99 at c=16 without and during a job"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="servewell-bench-batch-") as folder:
        root = Path(folder)
        os.environ["SERVEWELL_HOME"] = str(root / "home")
        os.environ["SERVEWELL_JOBS__CHUNK_ROWS"] = str(args.chunk_rows)
        os.environ["SERVEWELL_SERVER__BATCHING__MAX_BATCH_SIZE"] = str(args.batch_rows)
        row = register_demo()
        if args.online:
            table = root / "rows.csv"
            write_csv(table, max(args.rows))
            idle, busy = online_p99(table, root, row)
            print(f"REST c=16 p99: {idle:.2f} ms without a job, {busy:.2f} ms during one")
            return
        results = []
        for rows in args.rows:
            table = root / f"rows-{rows}.csv"
            write_csv(table, rows)
            results.append(
                ("runtime alone, arrays", rows, *runtime_alone(table, args, parse=False))
            )
            results.append(
                ("runtime alone, csv module", rows, *runtime_alone(table, args, parse=True))
            )
            results.append(("servewell batch", rows, *local_batch(table, root)))
            results.append(("server job", rows, *server_job(table, root)))
            table.unlink()
    print(f"\nchunk {args.chunk_rows} rows, batch {args.batch_rows} rows")
    print(f"{'path':28} {'rows':>10} {'rows/s':>10} {'peak RSS MiB':>13}")
    for name, rows, rate, rss_mib in results:
        print(f"{name:28} {rows:>10,} {rate:>10,.0f} {rss_mib:>13.0f}")


def write_csv(path: Path, rows: int) -> None:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["key", *data.feature_names])
        for index in range(rows):
            writer.writerow([f"k{index}", *(f"{v:.6g}" for v in data.data[index % len(data.data)])])


def runtime_alone(table: Path, args: Any, parse: bool) -> tuple[float, float]:
    """Rows/s and peak RSS (MiB) of the ONNX file alone, in a fresh process."""
    code = RUNTIME_ALONE.format(table=str(table), batch=args.batch_rows, parse=parse)
    printed, rss = _child([sys.executable, "-c", code])
    return float(printed.strip().splitlines()[-1]), rss


RUNTIME_ALONE = """
import csv, sys, time, numpy as np, onnxruntime as ort
from servewell.bootstrap import build_services
from servewell.core.ref import ModelRef
from servewell.settings import load_settings
services = build_services(load_settings())
version = services.registry.resolve(ModelRef.parse("breast-cancer"))
artifact = version.artifact("onnx")
session = ort.InferenceSession(str(services.artifacts.fetch(artifact.uri, artifact.sha256)))
name = session.get_inputs()[0].name
batch = {batch}
def batches():
    with open({table!r}, newline="") as lines:
        reader = csv.reader(lines)
        next(reader)
        rows = []
        for record in reader:
            rows.append([float(cell) for cell in record[1:]])
            if len(rows) == batch:
                yield np.asarray(rows, dtype=np.float32)
                rows = []
        if rows:
            yield np.asarray(rows, dtype=np.float32)
prepared = None if {parse} else list(batches())
started = time.perf_counter()
count = 0
for x in (batches() if {parse} else prepared):
    session.run(None, {{name: x}})
    count += len(x)
print(count / (time.perf_counter() - started))
"""


def local_batch(table: Path, root: Path) -> tuple[float, float]:
    servewell = str(Path(sys.executable).parent / "servewell")
    out = root / "scored.csv"
    command = [servewell, "batch", MODEL, str(table), "-o", str(out), "--id-column", "key"]
    printed, rss = _child(command)
    assert _lines(out) == _lines(table)  # a header and one line a row, each
    out.unlink()
    (rate,) = re.findall(r"rows/s\W+([0-9,]+)", printed)  # the summary's: scoring alone
    return float(rate.replace(",", "")), rss


def server_job(table: Path, root: Path) -> tuple[float, float]:
    port = free_port()
    process = start_servewell(port, root / "server", PLAIN, ("--models", MODEL))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/v2/health/ready")
        with table.open("rb") as file:
            job = httpx.post(
                f"{url}/v1/models/{MODEL}/jobs",
                files={"file": (table.name, file)},
                data={"id_column": "key"},
                timeout=600,
            ).json()
        while (status := httpx.get(f"{url}/v1/jobs/{job['id']}", timeout=30).json())["state"] in (
            "queued",
            "running",
        ):
            time.sleep(0.5)
        assert status["state"] == "succeeded", status
        rss = _peak_rss_mib(process.pid)
        return float(status["rows_per_s"]), rss
    finally:
        process.kill()
        process.wait()


#: Runs a command and prints its peak RSS (KiB) last on stderr: a fresh process's
#: RUSAGE_CHILDREN is that one child's alone.
MEASURED = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(done.returncode)"
)


def online_p99(table: Path, root: Path, row: list[float]) -> tuple[float, float]:
    """REST p99 (ms) at c=16 for 8 s without a job, then while a job of ``table`` runs."""
    port = free_port()
    process = start_servewell(port, root / "online", PLAIN, ("--models", MODEL))
    url = f"http://127.0.0.1:{port}"
    body = write_bodies(root / "bodies", row, "")["rest"]
    try:
        wait_ready(f"{url}/v2/health/ready")
        run_wrk(url + REST_PATH, body, 16, 3)  # warm-up
        idle = run_wrk(url + REST_PATH, body, 16, 8)["p99_ms"]
        with table.open("rb") as file:
            job = httpx.post(
                f"{url}/v1/models/{MODEL}/jobs", files={"file": (table.name, file)}, timeout=600
            ).json()
        status_url = f"{url}/v1/jobs/{job['id']}"
        while httpx.get(status_url, timeout=30).json()["rows_done"] == 0:
            time.sleep(0.2)
        busy = run_wrk(url + REST_PATH, body, 16, 8)["p99_ms"]
        state = httpx.get(status_url, timeout=30).json()["state"]
        if state != "running":
            print(f"note: the job was {state} before the loaded run ended", file=sys.stderr)
        return idle, busy
    finally:
        process.kill()
        process.wait()


def _child(command: list[str]) -> tuple[str, float]:
    """Run a command; what it printed and its peak RSS in MiB."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, *command], check=True, capture_output=True, text=True
    )
    return done.stdout, int(done.stderr.strip().splitlines()[-1]) / 1024


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _lines(path: Path) -> int:
    with path.open("rb") as file:
        return sum(1 for _ in file)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
