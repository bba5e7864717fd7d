"""``servewell loadtest``'s client side by side with wrk and wrk2: is the load generator
the bottleneck?

    .venv/bin/python bench/loadtest.py            # about 12 minutes on 2 cores (with wrk2)

It serves the demo model (``servewell serve``, validation, metrics and access log on;
keys, rate limits and the response cache off, as ``bench/run.py``'s ``rest`` row) and,
beside it, the HTTP floor (``bench/floor.py``: the fastest server this stack makes),
each pinned to core 0; the load generators run on core 1, one at a time, with the
same REST body. Per server, in rounds whose order alternates:

  max     wrk -c64 and servewell's closed loop at 64 connections: the most each gets
          (the target: servewell at least half of wrk's)
  c=1     both at one connection, and c=16: throughput and p50 (the target: within 15 %)
  rate    servewell's open loop at a third of wrk's c=16 rate: what it sent per second
          against the rate asked, and its p50 against wrk's at c=1

then, when wrk2 (giltene/wrk2, the fixed-rate wrk; ``--wrk2 PATH``) is there, rounds at
fixed rates below saturation, a quarter and a half of the most wrk got (the lesser of
its c=64 and c=16 medians above: wrk2's connections each keep a schedule of their own,
and at 16 they fall behind for good past about what wrk gets at 16), each moved to the
nearest odd multiple of 200/s: at the others wrk2's 16 connections send in bunches
(``wrk2_even_rate``), and its latency is then its own bunching's:

  fixed   wrk2 ``-R rate -c16`` and servewell's open loop (``--rate``) at that rate, one
          after the other: throughput and p50 (the target: within 15 %)

Both count latency from each request's intended send time (coordinated omission
corrected), and both also from its actual send (wrk2's ``-U``, servewell's ``p50 from
send``): the rows compare both p50s, and each tool's own lateness beside them (wrk2's an
estimate, its corrected p50 less its ``-U`` p50; servewell's measured, actual send less
intended). wrk2 calibrates for its first 10 s and then resets its latency histogram
(its Requests/sec still counts the whole run), so each fixed-rate run lasts
``--fixed-seconds`` (30) and servewell's first 10 s are a warm-up step at the same
rate that its figures leave out: both report the latency of the same last 20 s.

The medians of the rounds (and, for the fixed rates, the rounds' spread) go to tables
and bench/results/loadtest-<time>.json, with the load average at each fixed-rate round.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
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
    wrk_latency_ms,
)

BENCH = Path(__file__).resolve().parent
#: Where bench/README.md's instructions build wrk2 (outside the project).
BUILT_WRK2 = Path("/tmp/wrk2-src/wrk")
#: wrk2 resets its latency histogram after this long (CALIBRATE_DELAY_MS, plus 5 ms a
#: connection): servewell's open loop spends it in a warm-up step.
WRK2_CALIBRATION_S = 10
#: The fixed rates, as fractions of wrk's c=64 maximum (then moved to the nearest rate at
#: which wrk2's connections send evenly spread: ``wrk2_even_rate``).
FIXED_FRACTIONS = (0.25, 0.5)
#: A rate whose period is wrk2's 5 ms between connections' starts: 1 / 5 ms.
WRK2_STAGGER_RATE = 200
WITHIN = 0.15


def servewell_client(
    url: str, body: Path, load: str, seconds: int, warmup_s: int = 0
) -> dict[str, Any]:
    """servewell's load generator on the load core: ``load`` is ``c=<n>`` or ``r=<rate>``;
    the first ``warmup_s`` of the ``seconds`` are left out of its figures."""
    command = [
        "taskset", "-c", LOAD_CORE, sys.executable, str(Path(__file__)), "--client",
        url, str(body), load, str(seconds), str(warmup_s),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:  # its traceback, not just "exit status 1"
        sys.exit(f"servewell's client ({load}) failed:\n{done.stderr}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def client_main(url: str, body_path: str, load: str, seconds: int, warmup_s: int) -> None:
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

    def step(label: str, duration_s: int) -> Step:
        if kind == "c":
            return Step(label, duration_s, concurrency=int(value))
        return Step(label, duration_s, rate_per_s=float(value))

    steps = [step("warm-up", warmup_s)] if warmup_s else []
    plan = Plan([*steps, step(load, seconds - warmup_s)])
    result = run_load_test(plan, target, requests).steps[-1]
    figures = {
        "requests_per_s": result.throughput_rps,
        "p50_ms": result.latency_ms["p50"],
        "p99_ms": result.latency_ms["p99"],
        "errors": sum(result.errors.values()),
    }
    if result.latency_from_send_ms is not None and result.sent_late_ms is not None:
        # Open loop: from the actual sends (as wrk2's -U), and how late those were.
        figures["p50_from_send_ms"] = result.latency_from_send_ms["p50"]
        figures["sent_late_p50_ms"] = result.sent_late_ms["p50"]
        figures["sent_late_p99_ms"] = result.sent_late_ms["p99"]
    print(json.dumps(figures))


def find_wrk2(given: str | None) -> tuple[str | None, str]:
    """The wrk2 binary to run, or None and why not."""
    if given:
        found = shutil.which(given)
        return (found, "") if found else (None, f"--wrk2 {given}: no such executable")
    found = shutil.which("wrk2") or (str(BUILT_WRK2) if os.access(BUILT_WRK2, os.X_OK) else None)
    return (found, "") if found else (None, f"no wrk2 on PATH nor at {BUILT_WRK2}")


def wrk2_even_rate(rate: float, connections: int) -> int:
    """The rate nearest ``rate`` at which wrk2's connections send evenly spread.

    wrk2 opens its connections 5 ms apart (``thread_main``: ``i * 5``) and each keeps a
    schedule of its own from its start, one request every ``connections / rate``
    seconds; so connection i sends at phase ``5 ms * i`` modulo that period. At
    ``200 * m`` requests/s the period is ``5 ms * connections / m``, and the phases are
    ``connections`` evenly spaced ones when m and ``connections`` share no factor; when
    they do, connections share phases and send together: at 3,200/s on 16 (m = 16) all
    16 at once, every 5 ms, and the server's own latency for wrk2 was 1.35 ms at its
    median against 0.73 for servewell's evenly spread open loop (``bench/loadtest_wire.py``,
    bench/README.md); at 3,000/s (m = 15) 0.77 against 0.75.
    """
    m = max(1, round(rate / WRK2_STAGGER_RATE))
    for step in range(m):  # the nearest m coprime with the connections, below or above
        for candidate in (m - step, m + step):
            if candidate > 0 and math.gcd(candidate, connections) == 1:
                return candidate * WRK2_STAGGER_RATE
    return m * WRK2_STAGGER_RATE


def run_wrk2(
    wrk2: str, url: str, body: dict[str, str], rate: int, connections: int, seconds: int
) -> dict[str, Any]:
    """One wrk2 run at ``rate`` requests/s: POSTs of ``body`` (``post.lua``); its
    latencies are those after its calibration, counted from the intended send times."""
    command = [
        "taskset", "-c", LOAD_CORE, wrk2, "-t1", f"-c{connections}", f"-d{seconds}s",
        f"-R{rate}", "--latency", "-U", "-s", str(BENCH / "post.lua"), url,
    ]  # fmt: skip
    output = subprocess.run(
        command, env={**os.environ, **body}, capture_output=True, text=True, check=True
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": wrk_latency_ms(output, r"50\.000%"),
        "p99_ms": wrk_latency_ms(output, r"99\.000%"),
        # From each request's actual send (-U): wrk2's own lateness is the difference.
        "p50_from_send_ms": wrk_latency_ms(output.split("Uncorrected")[1], r"50\.000%"),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(n) for n in sockets.groups()) if sockets else 0),
    }


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


def measure_fixed(
    url: str,
    body: dict[str, str],
    wrk2: str,
    rates: list[int],
    args: argparse.Namespace,
    flip: bool,
) -> dict[str, Any]:
    """One round of the fixed rates against one server: wrk2 and servewell's open loop
    at each rate, one after the other (the order alternating between rounds)."""
    path = Path(body["BENCH_BODY"])
    seconds, connections = args.fixed_seconds, args.fixed_connections
    found: dict[str, Any] = {"load_average": os.getloadavg()[0]}
    for rate in rates:
        order = ("servewell", "wrk2") if flip else ("wrk2", "servewell")
        for tool in order:
            found[f"{tool} {rate}/s"] = (
                run_wrk2(wrk2, url + REST_PATH, body, rate, connections, seconds)
                if tool == "wrk2"
                else servewell_client(url, path, f"r={rate}", seconds, WRK2_CALIBRATION_S)
            )
    found["load_average_after"] = os.getloadavg()[0]
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
        f"({r['p50_ms'] / figures['wrk c=1']['p50_ms']:.2f} of wrk's at c=1), "
        f"p50 from send {r['p50_from_send_ms']:.2f} ms, sent late p50/p99 "
        f"{r['sent_late_p50_ms']:.2f}/{r['sent_late_p99_ms']:.2f} ms"
    )


def spread(values: list[float], digits: int) -> str:
    """The median and, in brackets, the lowest and highest of the rounds."""
    low, mid, high = (
        f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values))
    )
    return f"{mid} ({low}-{high})"


def verdict(ratio: float) -> str:
    return f"{ratio:.2f} ({'met' if abs(ratio - 1) <= WITHIN else 'missed'})"


def fixed_table(server: str, rates: list[int], rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Print the fixed-rate rows (medians, the rounds' range in brackets) and a verdict
    against the 15 % on the median ratios; the same figures as a dict for the JSON."""
    loads = ", ".join(f"{r['load_average']:.1f}-{r['load_average_after']:.1f}" for r in rounds)
    print(f"\n{server}: fixed rates, wrk2 vs servewell's open loop; load average {loads}")
    columns = ("wrk2 req/s", "servewell req/s", "ratio", "wrk2 p50 ms", "servewell p50 ms", "ratio")
    print(f"{'rate':>6}" + "".join(f" {c:>19}" for c in columns))
    ratios = {}
    for rate in rates:
        wrk2 = [r[f"wrk2 {rate}/s"] for r in rounds]
        ours = [r[f"servewell {rate}/s"] for r in rounds]
        cells, ratios[str(rate)] = [], {}
        for key, digits in (("requests_per_s", 0), ("p50_ms", 2)):
            theirs, mine = [w[key] for w in wrk2], [s[key] for s in ours]
            ratio = [m / t for t, m in zip(theirs, mine, strict=True)]
            cells += [spread(theirs, digits), spread(mine, digits), spread(ratio, 2)]
            ratios[str(rate)][key] = statistics.median(ratio)
        print(f"{rate:>6}" + "".join(f" {c:>19}" for c in cells))
    for rate in rates:
        ratios[str(rate)]["p50_from_send_ms"] = from_send_row(rate, rounds)
    for rate, ratio in ratios.items():
        print(
            f"{rate}/s within 15 % of wrk2's? throughput {verdict(ratio['requests_per_s'])}, "
            f"p50 {verdict(ratio['p50_ms'])}, p50 from send {verdict(ratio['p50_from_send_ms'])}"
        )
    return {"rates": rates, "rounds": rounds, "median_ratios": ratios}


def from_send_row(rate: int, rounds: list[dict[str, Any]]) -> float:
    """Print one rate's p50s from the actual sends (wrk2's -U, servewell's from send),
    their ratio, and each tool's own lateness: wrk2's estimated (its corrected p50 less
    its -U p50), servewell's measured (the p50 of actual less intended send); the
    median ratio."""
    wrk2 = [r[f"wrk2 {rate}/s"] for r in rounds]
    ours = [r[f"servewell {rate}/s"] for r in rounds]
    theirs, mine = [w["p50_from_send_ms"] for w in wrk2], [s["p50_from_send_ms"] for s in ours]
    ratio = [m / t for t, m in zip(theirs, mine, strict=True)]
    wrk2_late = [w["p50_ms"] - w["p50_from_send_ms"] for w in wrk2]
    print(
        f"{rate}/s from the actual sends: p50 wrk2 -U {spread(theirs, 2)} ms, servewell "
        f"{spread(mine, 2)} ms, ratio {spread(ratio, 2)}; sent late p50: wrk2 "
        f"~{spread(wrk2_late, 2)} ms (estimated), servewell "
        f"{spread([s['sent_late_p50_ms'] for s in ours], 2)} ms (measured)"
    )
    return statistics.median(ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--wrk2",
        help="the wrk2 binary (default: wrk2 on PATH, else "
        f"{BUILT_WRK2}); without it the fixed-rate rows are skipped",
    )
    parser.add_argument(
        "--fixed-seconds",
        type=int,
        default=30,
        help=f"each fixed-rate run (the first {WRK2_CALIBRATION_S} s not counted)",
    )
    parser.add_argument("--fixed-connections", type=int, default=16, help="wrk2's -c")
    args = parser.parse_args()
    wrk2, why_not = find_wrk2(args.wrk2)
    if wrk2 is None:
        print(f"fixed-rate rows skipped: {why_not} (bench/README.md says how to build it)")
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
            report: dict[str, Any] = {}
            for name, (url, _) in servers.items():
                rounds = [measure(url, body, args.seconds, i % 2 == 1) for i in range(args.rounds)]
                report[name] = median_of(rounds)
                print_table(name, report[name])
                if wrk2 is not None:
                    # Below saturation: under the most wrk got, at 64 connections and at
                    # 16 (wrk2's own connections, each on its own schedule, fall behind
                    # for good past about that).
                    top = min(report[name][f"wrk c={c}"]["requests_per_s"] for c in (64, 16))
                    rates = [
                        wrk2_even_rate(top * fraction, args.fixed_connections)
                        for fraction in FIXED_FRACTIONS
                    ]
                    fixed = [
                        measure_fixed(url, body, wrk2, rates, args, i % 2 == 1)
                        for i in range(args.rounds)
                    ]
                    report[f"{name} fixed"] = fixed_table(name, rates, fixed)
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
        client_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        main()
