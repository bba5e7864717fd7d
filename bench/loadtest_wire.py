"""wrk2 and servewell's open loop at one fixed rate, seen from the wire: what each tool
reports beside what the server did for it.

    .venv/bin/python bench/loadtest_wire.py servewell --rate 2400 --rounds 2   # ~3 minutes
    .venv/bin/python bench/loadtest_wire.py floor --rate 14000

Needs tcpdump (``apt-get install tcpdump``, run as root) and wrk2 (as
``bench/loadtest.py``). The server (servewell's or the floor, pinned to core 0) is
loaded by each tool in turn (on core 1, the order alternating between rounds) while
tcpdump (core 1) records the loopback. From the kernel's timestamps of each connection's
packets: the server's own latency (a request's first packet to its answer's first
packet), how many connections the tool opened (servewell's with its warm-up step's), and
how its requests bunch on arrival (the share that came within 50 µs of the one before;
the milliseconds in which none came). The tools' own figures come first (p50 from the
intended send, and from the actual send: wrk2's ``-U``); each tool's first 10 s (wrk2's
calibration, servewell's warm-up step) are left out of the wire's figures too.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import struct
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from run import (
    LOAD_CORE,
    PLAIN,
    REST_PATH,
    free_port,
    register_demo,
    start_floor,
    start_servewell,
    wait_ready,
    write_bodies,
)

from loadtest import WRK2_CALIBRATION_S, find_wrk2, run_wrk2, servewell_client

#: Bytes kept of each packet: the headers and the first bytes of HTTP.
SNAPLEN = 96
_NANOSECOND_PCAP = 0xA1B23C4D


def exchanges(pcap: Path, port: int) -> tuple[list[tuple[float, float]], int]:
    """Each request's arrival and the server's latency for it (seconds), from a pcap of
    IPv4 TCP on the loopback; and how many client connections sent requests."""
    data = pcap.read_bytes()
    scale = 1e9 if struct.unpack("<I", data[:4])[0] == _NANOSECOND_PCAP else 1e6
    link_bytes = {1: 14, 113: 16}.get(struct.unpack("<I", data[20:24])[0], 0)
    sent: dict[int, list[float]] = {}
    answered: dict[int, list[float]] = {}
    offset = 24
    while offset + 16 <= len(data):
        seconds, fraction, kept, _ = struct.unpack("<IIII", data[offset : offset + 16])
        packet = data[offset + 16 + link_bytes : offset + 16 + kept]
        offset += 16 + kept
        at = seconds + fraction / scale
        if len(packet) < 20 or packet[0] >> 4 != 4:
            continue
        ip_bytes = (packet[0] & 15) * 4
        tcp = packet[ip_bytes:]
        source, destination = struct.unpack(">HH", tcp[:4])
        head = tcp[(tcp[12] >> 4) * 4 :][:4]
        if destination == port and head == b"POST":
            sent.setdefault(source, []).append(at)
        elif source == port and head == b"HTTP":
            answered.setdefault(destination, []).append(at)
    pairs = [
        (request, answer - request)
        for connection, requests in sent.items()
        for request, answer in zip(requests, answered.get(connection, []), strict=False)
    ]
    return sorted(pairs), len(sent)


def wire_figures(pairs: list[tuple[float, float]], connections: int) -> dict[str, float]:
    """The server's latency quantiles (ms) and the arrivals' bunching, after the first
    ``WRK2_CALIBRATION_S``."""
    measured = [p for p in pairs if p[0] >= pairs[0][0] + WRK2_CALIBRATION_S]
    arrivals = [at for at, _ in measured]
    latencies = sorted(latency for _, latency in measured)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    per_ms = Counter(int(at * 1000) for at in arrivals)

    def quantile(q: float) -> float:
        return latencies[int(q * (len(latencies) - 1))] * 1000

    return {
        "connections": connections,
        "server p50 ms": quantile(0.5),
        "server p90 ms": quantile(0.9),
        "server p99 ms": quantile(0.99),
        "within 50 µs": sum(gap < 50e-6 for gap in gaps) / len(gaps),
        "empty ms": 1 - len(per_ms) / ((arrivals[-1] - arrivals[0]) * 1000),
    }


def captured(port: int, load: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``load`` while tcpdump records the server's port; its figures and the wire's."""
    pcap = Path(tempfile.mkdtemp()) / "load.pcap"
    dump = subprocess.Popen(
        ["taskset", "-c", LOAD_CORE, "tcpdump", "-i", "lo", "-s", str(SNAPLEN), "-B", "65536",
         "-w", str(pcap), f"tcp port {port}"],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.5)  # tcpdump is listening
    try:
        figures = load()
        time.sleep(0.5)
    finally:
        dump.send_signal(signal.SIGINT)
        dump.wait(timeout=60)
    pairs, connections = exchanges(pcap, port)
    pcap.unlink()
    return {**figures, **wire_figures(pairs, connections)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", choices=("servewell", "floor"))
    parser.add_argument("--rate", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=25, help="each run, 10 s not counted")
    args = parser.parse_args()
    wrk2, why_not = find_wrk2(None)
    if wrk2 is None:
        raise SystemExit(why_not)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        os.environ["SERVEWELL_HOME"] = str(home / "home")
        os.chdir(home)
        body = write_bodies(home / "bodies", register_demo(), "")["rest"]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        if args.server == "servewell":
            server = start_servewell(port, home / "sw", PLAIN)
            wait_ready(f"{url}/v2/health/ready")
        else:
            server = start_floor(port)
            wait_ready(url, post=body)
        loads = {
            "wrk2": lambda: run_wrk2(wrk2, url + REST_PATH, body, args.rate, 16, args.seconds),
            "servewell": lambda: servewell_client(
                url, Path(body["BENCH_BODY"]), f"r={args.rate}", args.seconds, WRK2_CALIBRATION_S
            ),
        }
        try:
            loads["wrk2"]()  # a warm-up, not counted
            print(f"{'round':<6}{'tool':<10}" + "".join(f"{c:>15}" for c in COLUMNS))
            for i in range(args.rounds):
                for tool in ("wrk2", "servewell") if i % 2 == 0 else ("servewell", "wrk2"):
                    row = captured(port, loads[tool])
                    print(f"{i:<6}{tool:<10}" + "".join(f"{row[c]:>15.3f}" for c in COLUMNS))
        finally:
            server.terminate()
            server.wait(timeout=60)


COLUMNS = (
    "requests_per_s",
    "p50_ms",
    "p50_from_send_ms",
    "server p50 ms",
    "server p90 ms",
    "server p99 ms",
    "connections",
    "within 50 µs",
    "empty ms",
)


if __name__ == "__main__":
    main()
