"""Optimize figures for the MiniLM support-ticket model: fp32 ONNX vs each quantization.

    python bench/optimize.py                  # trains into a scratch SERVEWELL_HOME first
    python bench/optimize.py --runs 500 --batches 40

Trains and registers examples/text (support-tickets@1, fp32 ONNX + tokenizer), then runs
``optimize`` for each quantization against it, on the 340-row validation split recorded
at training, timing both sides in alternating rounds in this process. Writes
bench/results/optimize.json and prints the before/after tables. Needs servewell[torch].
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="single-text runs per side")
    parser.add_argument("--batches", type=int, default=40, help="batches of 32 per side")
    parser.add_argument("--quantize", nargs="+", default=["dynamic-int8", "fp16", "none"])
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="servewell-bench-"))
    os.environ["SERVEWELL_HOME"] = str(home)
    train = HERE.parent / "examples" / "text" / "train.py"
    subprocess.run([sys.executable, str(train)], check=True)

    from servewell.bootstrap import build_services
    from servewell.cli.optimize import comparison_table
    from servewell.core.ref import ModelRef
    from servewell.optimize.benchmark import BenchmarkPlan
    from servewell.optimize.result import OptimizeOptions
    from servewell.optimize.run import optimize_version
    from servewell.settings import load_settings

    console = Console(width=100)
    services = build_services(load_settings())
    results = {}
    try:
        for quantization in args.quantize:
            options = OptimizeOptions(
                quantize=quantization,
                benchmark=BenchmarkPlan(single_runs=args.runs, batches=args.batches),
            )
            result = optimize_version(services, ModelRef.parse("support-tickets@1"), options)
            console.print(comparison_table(result))
            report = result.to_dict()
            results[quantization] = report
            change = report["change"]
            console.print(
                f"{quantization}: size -{change['size_reduction']:.1%}, accuracy drop "
                f"{change['accuracy_drop'] * 100:.2f} points, p50 x{change['p50_speedup']:.2f}, "
                f"gate {'passed' if result.passed else 'FAILED: ' + '; '.join(result.failures)}"
            )
    finally:
        services.close()
    out = HERE / "results" / "optimize.json"
    out.parent.mkdir(exist_ok=True)
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
