"""Optimize figures: each model's source against each quantization, in one run.

    python bench/optimize.py                  # both models, into a scratch SERVEWELL_HOME
    python bench/optimize.py --models tabular --runs 500 --batches 40

Two models, trained and registered first:

* ``text``: examples/text (support-tickets@1, MiniLM-L6 + head, fp32 ONNX + tokenizer),
  verified on the 340-row validation split recorded at training. Needs servewell[torch].
* ``tabular``: the Palmer penguins table (``palmerpenguins`` ships it: species from
  island, sex, four measurements and the year; 333 rows after dropping missing values),
  trained by ``servewell train`` with an MLP(128, 64) (the pipeline's one-hot categories
  and scaled numbers: its ONNX conversion computes in float64), verified on the 67-row
  validation split. static-int8 calibrates on rows sampled from the training profile.

Then ``optimize`` runs for each quantization against each model, timing both sides in
alternating rounds in this process. Writes bench/results/optimize.json and prints the
before/after tables.
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
from typing import Any

from rich.console import Console

HERE = Path(__file__).resolve().parent
MODELS = {
    "text": ("support-tickets@1", ["dynamic-int8", "fp16", "none"]),
    "tabular": ("penguins@1", ["dynamic-int8", "static-int8", "fp16", "none"]),
}
PENGUINS_PIPELINE = {
    "name": "penguins",
    "target": "species",
    "estimator": {
        "kind": "mlp",
        "params": {"hidden_layer_sizes": [128, 64]},
        "max_epochs": 300,
        "on_no_convergence": "warn",
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="single-row runs per side")
    parser.add_argument("--batches", type=int, default=40, help="batches of 32 per side")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="servewell-bench-"))
    os.environ["SERVEWELL_HOME"] = str(home)
    for model in args.models:
        TRAIN[model](home)

    from servewell.bootstrap import build_services
    from servewell.settings import load_settings

    console = Console(width=100)
    services = build_services(load_settings())
    try:
        results = {
            model: {
                method: _optimize(services, MODELS[model][0], method, args, console)
                for method in MODELS[model][1]
            }
            for model in args.models
        }
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


def _train_text(home: Path) -> None:
    subprocess.run(
        [sys.executable, str(HERE.parent / "examples" / "text" / "train.py")], check=True
    )


def _train_tabular(home: Path) -> None:
    """``servewell train`` on the penguins CSV, as a user would."""
    import yaml
    from palmerpenguins import load_penguins

    data, pipeline = home / "penguins.csv", home / "penguins.yaml"
    load_penguins().to_csv(data, index=False)
    pipeline.write_text(yaml.safe_dump(PENGUINS_PIPELINE), encoding="utf-8")
    servewell = Path(sys.executable).with_name("servewell")
    command = [str(servewell), "train", str(data), "--config", str(pipeline)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


TRAIN = {"text": _train_text, "tabular": _train_tabular}


def _optimize(
    services: Any, reference: str, method: str, args: argparse.Namespace, console: Console
) -> dict[str, Any]:
    from servewell.cli.optimize import comparison_table
    from servewell.core.ref import ModelRef
    from servewell.optimize.benchmark import BenchmarkPlan
    from servewell.optimize.result import OptimizeOptions
    from servewell.optimize.run import optimize_version

    options = OptimizeOptions(
        quantize=method, benchmark=BenchmarkPlan(single_runs=args.runs, batches=args.batches)
    )
    result = optimize_version(services, ModelRef.parse(reference), options)
    console.print(comparison_table(result))
    report = result.to_dict()
    change = report["change"]
    console.print(
        f"{reference} {method}: size {-change['size_reduction']:+.1%}, accuracy drop "
        f"{change['accuracy_drop'] * 100:.2f} points, p50 x{change['p50_speedup']:.2f}, "
        f"gate {'passed' if result.passed else 'FAILED: ' + '; '.join(result.failures)}"
    )
    return report


if __name__ == "__main__":
    main()
