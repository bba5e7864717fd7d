"""What starting a command or a server worker costs before it does anything (issue #11).

Run: ``python bench/startup.py [--runs 7] SRC [SRC ...]``, each SRC a ``src/`` folder
(this tree's, and another checkout's to compare). Each measure runs in fresh
interpreters of this Python, interleaved across the SRCs:

- imports, as the sum of what ``-X importtime`` reports (Python's own start-up modules
  included, ~15 ms): ``servewell.cli.app``; the server worker's app factory
  (``servewell.http.app``, ``servewell.http.protocol``); both, which is what a
  ``--workers N`` worker imports;
- wall time of ``servewell --help``, ``servewell serve --help`` and ``servewell keys
  list`` on an empty registry (this Python's console script, importing from SRC).

Prints the median of each, in ms, as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "servewell"
IMPORTS = {
    "import servewell.cli.app": "import servewell.cli.app",
    "import the worker's app factory": "import servewell.http.app, servewell.http.protocol",
    # What a `serve --workers N` worker imports: spawn re-runs the `servewell` script first.
    "a worker: the script, then the factory": (
        "import servewell.cli.app, servewell.http.app, servewell.http.protocol"
    ),
}
COMMANDS = {
    "servewell --help": [str(SCRIPT), "--help"],
    "servewell serve --help": [str(SCRIPT), "serve", "--help"],
    "servewell keys list (an empty registry)": [str(SCRIPT), "keys", "list"],
}


def import_ms(src: Path, code: str) -> float:
    """The cumulative import time of everything ``code`` imports, as -X importtime says."""
    result = _run(src, [sys.executable, "-X", "importtime", "-c", code])
    top_level = [
        line.split("|")
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and not line.split("|")[2].startswith("  ")
    ]
    return sum(int(cumulative) for _, cumulative, _ in top_level[1:]) / 1000  # header row


def wall_ms(src: Path, command: list[str]) -> float:
    started = time.perf_counter()
    _run(src, command)
    return (time.perf_counter() - started) * 1000


def _run(src: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(src)}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path, help="src/ folders to compare")
    parser.add_argument("--runs", type=int, default=7)
    arguments = parser.parse_args()
    # The registry `keys list` reads, made by its first run (each tree migrates it alike).
    os.environ["SERVEWELL_HOME"] = tempfile.mkdtemp(prefix="servewell-bench-startup-")
    measures: dict[str, Callable[[Path], float]] = {
        **{name: (lambda src, code=code: import_ms(src, code)) for name, code in IMPORTS.items()},
        **{name: (lambda src, cmd=cmd: wall_ms(src, cmd)) for name, cmd in COMMANDS.items()},
    }
    samples: dict[tuple[str, Path], list[float]] = {}
    for _ in range(arguments.runs):
        for name, measure in measures.items():
            for src in arguments.sources:  # interleaved: load on the machine hits both
                samples.setdefault((name, src), []).append(measure(src))
    print("| median of", arguments.runs, "| " + " | ".join(map(str, arguments.sources)) + " |")
    print("|---|" + "---:|" * len(arguments.sources))
    for name in measures:
        cells = [f"{statistics.median(samples[(name, src)]):,.0f} ms" for src in arguments.sources]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
