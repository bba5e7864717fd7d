"""What an LLM gateway adds to a call (issue #18): the scripted OpenAI-compatible
upstream called directly, through servewell, and through LiteLLM's proxy, side by side
in one run.

    .venv/bin/python bench/llm.py                     # about 5 minutes on 2 cores
    .venv/bin/python bench/llm.py --rounds 1 --seconds 3 --no-stream   # a quick look
    .venv/bin/python bench/llm.py --profile           # also a pyinstrument profile of servewell

It starts ``tests/upstreams/scripted_openai.py`` (every answer after ``--latency-ms``,
50 ms by default; a stream's pieces ``--chunk-delay-ms`` apart) and registers it in a
temporary SERVEWELL_HOME as a ``remote`` model of kind ``openai``
(``servewell register ... --format remote``); then, side by side:

  direct     the upstream's own /v1/chat/completions
  sw-client  servewell's upstream client (``serving/upstream.py``) called in one process
             on core 0, no server: what the calls to the upstream cost by themselves
  servewell  ``servewell serve`` (one worker), /v1/chat/completions of the remote model,
             with an API key and a rate limit that never refuses (checked on every
             request); response cache off (every request samples, temperature 0.7)
  litellm    LiteLLM's proxy (``--litellm PATH``, else ``litellm`` on PATH or in
             /tmp/litellm-venv; skipped, saying so, when there is none), one worker,
             the same upstream as an OpenAI-compatible ``api_base``, a master key, no
             database, no callbacks, no retries

Each gateway is pinned to core 0; the upstream and the load (``bench/llm_client.py``:
servewell's own load driver, in its own process) to core 1. At ``--concurrency`` (64)
each round measures every path, non-streaming and streaming (time to the first text
chunk, and to the stream's end), in an order that rotates every round. The overhead of a
gateway is its figure minus the direct path's *in the same round* (p50 and p99), then the
median over rounds, with the spread of the rounds beside it. The gateways' CPU time a
request is read from /proc over each point (less inflated by other tenants than
latencies). Results: bench/results/llm-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from llm_gateways import (
    Gateway,
    NotAnswering,
    find_litellm,
    litellm_overhead_header,
    prepare_servewell,
    start_litellm,
    start_servewell_gateway,
    start_upstream,
)
from resilience import cpu_seconds
from run import LOAD_CORE, SERVER_CORE

BENCH = Path(__file__).resolve().parent
TARGET_P50_MS, TARGET_P99_MS = 2.0, 10.0
#: The path of servewell's upstream client called in process, without a server.
ALONE = "sw-client"
#: LiteLLM's published overhead (docs.litellm.ai/docs/benchmarks, "2 Instance LiteLLM
#: Proxy": its "LiteLLM Overhead Duration", 4-CPU machines, PostgreSQL).
PUBLISHED_LITELLM = {"p50_ms": 12.0, "p99_ms": 43.0}


def main() -> None:
    args = parse_args()
    settings = vars(args) | {"litellm": str(args.litellm), "paths": sorted(args.paths)}
    report: dict[str, Any] = {"settings": settings}
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        os.environ["SERVEWELL_HOME"] = str(home / "home")
        os.chdir(home)
        gateways: list[Gateway] = []
        try:
            gateways.append(start_upstream(home / "upstream", args.latency_ms, args.chunk_delay_ms))
            upstream = gateways[0]
            if "client" in args.paths:
                gateways.append(replace(upstream, name=ALONE))
            if "servewell" in args.paths:
                key = prepare_servewell(home, upstream.url)
                gateways.append(start_servewell_gateway(home, key))
            litellm, why = find_litellm(args.litellm)
            if "litellm" not in args.paths:
                pass
            elif litellm is None:
                print(f"litellm: skipped ({why})", flush=True)
                report["litellm_skipped"] = why
            else:
                try:
                    gateways.append(start_litellm(litellm, home / "litellm", upstream.url))
                except NotAnswering as exc:
                    print(f"litellm: skipped ({exc})", flush=True)
                    report["litellm_skipped"] = str(exc)
            report["points"] = measure(gateways, args)
            if gateways[-1].name == "litellm":
                report["litellm_own_overhead_c1"] = litellm_overhead_header(gateways[-1])
            if args.profile and "servewell" in args.paths:
                report["profile"] = profile_servewell(home, key, args)
                print(
                    "\nservewell under pyinstrument, own time:",
                    *report["profile"]["top"],
                    sep="\n  ",
                )
        finally:
            for gateway in gateways:
                if gateway.name != ALONE:
                    gateway.stop()
    report["summary"] = summarize(report["points"])
    print_report(report)
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    out = results / f"llm-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured length of a point")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--chunk-delay-ms", type=float, default=5.0)
    parser.add_argument("--litellm", type=Path, help="LiteLLM's `litellm` command")
    parser.add_argument("--no-stream", action="store_true", help="non-streaming points only")
    parser.add_argument(
        "--paths",
        type=lambda text: set(text.split(",")),
        default={"direct", "client", "servewell", "litellm"},
        help="which of direct,client,servewell,litellm to measure (direct always is)",
    )
    parser.add_argument("--profile", action="store_true", help="profile servewell after")
    return parser.parse_args()


def run_client(gateway: Gateway, seconds: float, concurrency: int, stream: bool) -> dict[str, Any]:
    """One point from the load core (``bench/llm_client.py`` in its own process); the
    upstream client alone runs on the server core, in the gateways' place."""
    alone = gateway.name == ALONE
    command = [
        "taskset", "-c", SERVER_CORE if alone else LOAD_CORE, sys.executable,
        str(BENCH / "llm_client.py"), gateway.url, gateway.model, str(seconds), str(concurrency),
    ]  # fmt: skip
    if stream:
        command.append("--stream")
    if alone:
        command.append("--alone")
    if gateway.key:
        command += ["--key", gateway.key]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        sys.exit(f"the load client failed against {gateway.name}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def measure(gateways: list[Gateway], args: argparse.Namespace) -> list[dict[str, Any]]:
    kinds = (False,) if args.no_stream else (False, True)
    points = []
    for round_number in range(args.rounds):
        shift = round_number % len(gateways)
        order = gateways[shift:] + gateways[:shift]
        for stream in kinds:
            for gateway in order:
                if stream and gateway.name == ALONE:
                    continue
                point = measure_point(gateway, args, stream)
                point.update(path=gateway.name, stream=stream, round=round_number)
                points.append(point)
                first = f"  first {point['first_p50_ms']:.1f}" if stream else ""
                print(
                    f"round {round_number + 1} {'stream' if stream else 'plain':<6} "
                    f"{gateway.name:<10}{point['requests_per_s']:>8.0f} req/s  "
                    f"p50 {point['p50_ms']:7.2f}  p99 {point['p99_ms']:7.2f}{first}  "
                    f"cpu {point['cpu_us']:.0f} us/req  errors {point['errors']}",
                    flush=True,
                )
        httpx.delete(f"{gateways[0].url}/_received")
    return points


def measure_point(gateway: Gateway, args: argparse.Namespace, stream: bool) -> dict[str, Any]:
    cpu_before = cpu_seconds(gateway.process.pid)
    point = run_client(gateway, args.seconds, args.concurrency, stream)
    if gateway.name == ALONE:
        return point  # its own process's CPU a call
    cpu = cpu_seconds(gateway.process.pid) - cpu_before
    # CPU over the whole run (warm-up included) per request measured: an upper bound.
    point["cpu_us"] = cpu / max(point["requests"], 1) * 1e6
    return point


def summarize(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind and path: medians over rounds; per gateway, the paired overheads."""
    summary: dict[str, Any] = {}
    for stream in sorted({p["stream"] for p in points}):
        kind = "stream" if stream else "plain"
        mine = [p for p in points if p["stream"] == stream]
        keys = ["requests_per_s", "p50_ms", "p99_ms", "cpu_us", "errors"]
        keys += ["first_p50_ms", "first_p99_ms"] if stream else []
        paths: dict[str, Any] = {}
        for name in dict.fromkeys(p["path"] for p in mine):
            rows = [p for p in mine if p["path"] == name]
            paths[name] = {k: statistics.median(r[k] for r in rows) for k in keys}
            if name != "direct":
                paths[name]["overhead"] = paired_overheads(mine, name, keys[1:3] + keys[5:])
        summary[kind] = paths
    return summary


def paired_overheads(points: list[dict[str, Any]], name: str, keys: list[str]) -> dict[str, Any]:
    """``name``'s figure minus direct's of the same round: the median and the range."""
    direct = {p["round"]: p for p in points if p["path"] == "direct"}
    rows = [p for p in points if p["path"] == name and p["round"] in direct]
    found = {}
    for key in keys:
        deltas = [r[key] - direct[r["round"]][key] for r in rows]
        found[key] = {"median": statistics.median(deltas), "min": min(deltas), "max": max(deltas)}
    return found


def print_report(report: dict[str, Any]) -> None:
    for kind, paths in report["summary"].items():
        print(f"\n{kind}: medians of {report['settings']['rounds']} rounds")
        first = kind == "stream"
        head = f"{'path':<10}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'cpu us':>8}"
        head += f"{'first p50':>11}{'first p99':>11}" if first else ""
        print(head + "   overhead (median [min, max] of the rounds)")
        for name, f in paths.items():
            line = f"{name:<10}{f['requests_per_s']:>8.0f}{f['p50_ms']:>9.2f}{f['p99_ms']:>9.2f}"
            line += f"{f['cpu_us']:>8.0f}"
            line += f"{f['first_p50_ms']:>11.2f}{f['first_p99_ms']:>11.2f}" if first else ""
            for key, o in f.get("overhead", {}).items():
                line += f"   {key} +{o['median']:.2f} [{o['min']:.2f}, {o['max']:.2f}]"
            print(line)
    plain = report["summary"]["plain"].get("servewell", {}).get("overhead")
    if plain:
        p50, p99 = plain["p50_ms"]["median"], plain["p99_ms"]["median"]
        met = p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS
        print(
            f"\ntarget (servewell overhead p50 <= {TARGET_P50_MS} ms, p99 <= {TARGET_P99_MS} ms "
            f"at c={report['settings']['concurrency']}, one worker): p50 +{p50:.2f}, "
            f"p99 +{p99:.2f}: {'met' if met else 'MISSED'}"
        )
    if "litellm_own_overhead_c1" in report:
        own = report["litellm_own_overhead_c1"]
        print(f"litellm's own x-litellm-overhead-duration-ms at c=1: median {own:.2f} ms")
    print(f"published litellm overhead (2 instances): {PUBLISHED_LITELLM}")


def profile_servewell(home: Path, key: str, args: argparse.Namespace) -> dict[str, Any]:
    """One more non-streaming point against a servewell run under pyinstrument: the
    session, its text rendering (servewell's frames shown) and the top self times."""
    pyinstrument = Path(sys.executable).parent / "pyinstrument"
    if not pyinstrument.exists():
        return {"skipped": "pyinstrument is not installed in this environment"}
    stem = BENCH / "results" / f"llm-profile-{time.strftime('%Y%m%dT%H%M%S')}"
    stem.parent.mkdir(exist_ok=True)
    session = stem.with_suffix(".pyisession")
    gateway = start_servewell_gateway(home, key, name="profiled", profile_to=session)
    try:
        point = run_client(gateway, args.seconds, args.concurrency, False)
    finally:
        gateway.process.send_signal(signal.SIGINT)
        gateway.process.wait(timeout=120)
    load = [str(pyinstrument), "--load", str(session)]
    text = stem.with_suffix(".txt")
    shows = ["--show", "*/servewell/*", "--show", "*/httpx/*", "--show", "*/httpcore/*"]
    subprocess.run([*load, "-r", "text", *shows, "-o", str(text)], check=True)
    stats = stem.with_suffix(".pstats")
    subprocess.run([*load, "-r", "pstats", "-o", str(stats)], check=True)
    return {"point": point, "session": str(session), "text": str(text), "top": top_costs(stats)}


def top_costs(stats_path: Path, count: int = 25) -> list[str]:
    """The functions with the most time of their own (pyinstrument's samples; imports
    at start-up left out)."""
    import pstats

    stats = pstats.Stats(str(stats_path))
    rows = sorted(
        ((where, row) for where, row in stats.stats.items() if where[2] != "<module>"),  # type: ignore[attr-defined]
        key=lambda item: item[1][2],
        reverse=True,
    )
    total = sum(row[1][2] for row in rows) or 1.0
    return [
        f"{own / total:6.1%}  {Path(file).name}:{line} {name}"
        for (file, line, name), (_, _, own, _, _) in rows[:count]
    ]


if __name__ == "__main__":
    try:
        main()
    except NotAnswering as exc:
        sys.exit(str(exc))
