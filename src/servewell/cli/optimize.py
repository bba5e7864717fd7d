"""``servewell optimize``: a smaller, faster version that is proven no worse, or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from servewell.cli.output import console, open_services, print_json, reporting_errors, who_am_i
from servewell.core.figure import format_figure
from servewell.core.ref import ModelRef
from servewell.errors import GateFailed
from servewell.optimize.plan import CALIBRATION_METHODS, QUANTIZATIONS

if TYPE_CHECKING:
    from servewell.optimize.result import OptimizeOptions, OptimizeResult

# How int8 is done (servewell.optimize.quantize.Int8Plan); None: the default.
Operators = Annotated[
    str | None,
    typer.Option(
        "--operators",
        help="int8: operator types to quantize: weighted (default: MatMul, Gemm, Conv, "
        "Gather… with weights), all, or a list such as MatMul,Gemm.",
    ),
]
PerChannel = Annotated[
    bool | None,
    typer.Option(
        "--per-channel/--per-tensor",
        help="int8: one scale per output channel of a weight (default), or per tensor.",
    ),
]
CalibrationMethod = Annotated[
    str | None,
    typer.Option(
        "--calibration-method",
        help=f"static int8: {', '.join(CALIBRATION_METHODS)} (default {CALIBRATION_METHODS[0]}).",
    ),
]


def optimize(
    reference: str = typer.Argument(..., help="The version to optimize: name@3, name@alias."),
    to: str = typer.Option("onnx", "--to", help="Target format (onnx)."),
    quantize: str = typer.Option(
        "dynamic-int8", "--quantize", help=f"One of: {', '.join(QUANTIZATIONS)}."
    ),
    eval_path: Path | None = typer.Option(
        None, "--eval", help="Labelled CSV/Parquet; default: the validation split recorded."
    ),
    target: str | None = typer.Option(None, "--target", help="The label column of --eval."),
    min_accuracy: float = typer.Option(0.90, "--min-accuracy", help="Least accuracy to pass."),
    max_accuracy_drop: float = typer.Option(
        0.01, "--max-accuracy-drop", help="Most accuracy lost against the source to pass."
    ),
    calibration: Path | None = typer.Option(
        None, "--calibration", help="Rows for static int8; default: sampled from the profile."
    ),
    operators: Operators = None,
    per_channel: PerChannel = None,
    calibration_method: CalibrationMethod = None,
    alias: str | None = typer.Option(None, "--alias", help="Point this alias at the new version."),
    runs: int = typer.Option(200, "--runs", min=1, help="Single-row predictions timed per side."),
    batches: int = typer.Option(20, "--batches", min=1, help="Batches of 32 timed per side."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Convert to ONNX, optimize and quantize, verify against the source, gate, register."""
    from servewell.optimize.benchmark import BenchmarkPlan
    from servewell.optimize.result import OptimizeOptions

    with reporting_errors():
        ref = ModelRef.parse(reference)
        options = OptimizeOptions(
            quantize=quantize,
            to=to,
            eval_path=eval_path,
            target=target,
            calibration_path=calibration,
            operators=operators,
            per_channel=per_channel,
            calibration_method=calibration_method,
            min_accuracy=min_accuracy,
            max_accuracy_drop=max_accuracy_drop,
            alias=alias,
            benchmark=BenchmarkPlan(single_runs=runs, batches=batches),
        )
    _optimize_and_report(ref, options, as_json)


def _optimize_and_report(ref: ModelRef, options: OptimizeOptions, as_json: bool) -> None:
    from servewell.optimize.run import optimize_version, register_optimized

    alias = options.alias
    with open_services() as services:
        with console.status(f"optimizing {ref}…") as status:
            result = optimize_version(
                services, ref, options, on_stage=lambda s: status.update(f"{ref}: {s}…")
            )
            if result.passed:
                status.update(f"{ref}: registering…")
                register_optimized(services, result, alias=alias, by=who_am_i())
        if as_json:
            print_json(_report(result))
        else:
            console.print(comparison_table(result))
        if not result.passed:
            raise GateFailed(result.failures)
    if not as_json:
        _print_outcome(result, alias)


def comparison_table(result: OptimizeResult) -> Table:
    """Before and after, side by side: size, accuracy, p50, p99, throughput, agreement."""
    before, after = result.before, result.after
    table = Table(
        title=f"{result.source.name}@{result.source.version} → {result.quantization}, "
        f"verified on {result.evaluation_rows} rows ({result.evaluation})",
        title_justify="left",
    )
    for column in ("", "before", "after", "change"):
        table.add_column(column, justify="left" if not column else "right")
    table.add_row("format", before.format, after.format, "")
    table.add_row(
        "size",
        _mib(before.size_bytes),
        _mib(after.size_bytes),
        f"{after.size_bytes / before.size_bytes - 1:+.1%}",
    )
    for name in after.metrics:
        if name in before.metrics:
            old, new = before.metrics[name], after.metrics[name]
            table.add_row(name, f"{old:.4f}", f"{new:.4f}", f"{new - old:+.4f}")
    bt, at = before.timing, after.timing
    table.add_row(
        "p50 (1 row)", f"{bt.p50_ms:.2f} ms", f"{at.p50_ms:.2f} ms", _speedup(bt.p50_ms, at.p50_ms)
    )
    table.add_row(
        "p99 (1 row)", f"{bt.p99_ms:.2f} ms", f"{at.p99_ms:.2f} ms", _speedup(bt.p99_ms, at.p99_ms)
    )
    table.add_row(
        f"throughput (batch {at.batch_size})",
        f"{bt.throughput_rows_s:,.0f} rows/s",
        f"{at.throughput_rows_s:,.0f} rows/s",
        _speedup(at.throughput_rows_s, bt.throughput_rows_s),
    )
    table.add_row("label agreement", "", f"{result.label_agreement:.2%}", "")
    table.add_row("max |Δ probability|", "", format_figure(result.max_abs_diff), "")
    table.caption = _how(result)
    return table


def _how(result: OptimizeResult) -> str | None:
    """How the candidate was made, when there is more to it than the method's name."""
    notes = []
    if result.plan is not None:
        plan = result.plan.to_dict(result.quantization)
        scales = "per channel" if plan["per_channel"] else "per tensor"
        method = plan.get("calibration_method")
        notes.append(
            f"int8 {', '.join(result.quantized_operators)}, {scales}"
            + (f", {method} calibration" if method else "")
        )
    if result.narrowed is not None:
        narrowed = result.narrowed
        notes.append(
            f"float64 narrowed to float32 first: labels agree {narrowed.label_agreement:.2%}, "
            f"max |Δ probability| {format_figure(narrowed.max_abs_diff)}"
        )
    return "; ".join(notes) or None


def _print_outcome(result: OptimizeResult, alias: str | None) -> None:
    for check in result.gate:
        console.print(f"[green]pass[/] {check.message}")
    version = result.version
    assert version is not None
    console.print(
        f"registered [bold]{version.name}@{version.version}[/] (parent "
        f"{result.source.name}@{result.source.version}, {result.quantization})"
        + (f", alias [cyan]{alias}[/]" if alias else "")
    )


def _report(result: OptimizeResult) -> dict[str, Any]:
    report = result.to_dict()
    report["registered"] = (
        f"{result.version.name}@{result.version.version}" if result.version else None
    )
    return report


def _speedup(slow: float, fast: float) -> str:
    return f"{slow / fast:.2f}x" if fast > 0 else "-"


def _mib(size_bytes: int) -> str:
    return (
        f"{size_bytes / 2**20:.2f} MiB" if size_bytes >= 2**20 else f"{size_bytes / 1024:.1f} KiB"
    )
