"""What ``servewell loadtest`` shows: a live line per second while a step runs (rate,
p50/p99 of that second, errors by status), then the per-step table, for open-loop
steps how late the client sent (and a warning when it fell behind), and the verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from servewell.loadtest.run import LoadTestResult
    from servewell.loadtest.stats import StepRecorder

_QUANTILES = ("p50", "p90", "p99", "p99.9", "max")


class LiveView:
    """A Rich live table on a terminal (nothing otherwise): one row per running step."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: dict[str, list[str]] = {}
        self.live: Live | None = None

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def tick(self, label: str, point: dict[str, float], recorder: StepRecorder) -> None:
        errors = {s: n for s, n in recorder.statuses.items() if not 200 <= s < 300}
        wrong = sum(n for s, n in recorder.invalid_statuses.items() if not 400 <= s < 500)
        spelled = ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(errors.items()))
        if wrong:
            spelled += f"{', ' if spelled else ''}invalid not 4xx: {wrong}"
        self.rows[label] = [
            label,
            f"{point['t_s']:.0f}",
            f"{point['requests']:.0f}",
            f"{point['p50_ms']:.2f}",
            f"{point['p99_ms']:.2f}",
            spelled or "none",
        ]
        if self.live is not None:
            self.live.update(self._table())

    def _table(self) -> Table:
        table = Table(title="load test (last second)")
        for name in ("step", "s", "req/s", "p50 ms", "p99 ms", "errors by status"):
            table.add_column(
                name, justify="left" if name in ("step", "errors by status") else "right"
            )
        for row in self.rows.values():
            table.add_row(*row)
        return table


def result_table(result: LoadTestResult) -> Table:
    table = Table(title="per step")
    table.add_column("step")
    for name in ("requests", "req/s", *(f"{q} ms" for q in _QUANTILES)):
        table.add_column(name, justify="right")
    table.add_column("errors by status")
    for step in result.steps:
        errors = ", ".join(f"{s}: {n}" for s, n in step.errors.items()) or "none"
        if step.invalid_requests:
            errors += f" (invalid bodies: {_statuses(step.invalid_statuses)})"
        table.add_row(
            step.label,
            f"{step.requests:,}",
            f"{step.throughput_rps:,.1f}",
            *(f"{step.latency_ms[q]:.2f}" for q in _QUANTILES),
            errors,
        )
    return table


def open_loop_lines(result: LoadTestResult) -> list[str]:
    """Per open-loop step, how late the client sent and the p50 from the actual sends;
    a warning for each step where the client itself fell behind."""
    lines = []
    for step in result.steps:
        late, from_send = step.sent_late_ms, step.latency_from_send_ms
        if late is None or from_send is None:
            continue
        lines.append(
            f"{step.label}: sent late p50/p99 {late['p50']:.2f}/{late['p99']:.2f} ms, "
            f"p50 from send {from_send['p50']:.2f} ms (p50 from intended send "
            f"{step.latency_ms['p50']:.2f} ms)"
        )
        if step.client_fell_behind:
            lines.append(
                f"[bold yellow]warning[/] {step.label}: the load generator itself was late "
                f"(sent late p99 {late['p99']:.2f} ms): its latencies include that wait, so "
                "the server may be faster than shown; use a lower --rate or run the client "
                "on another machine"
            )
    return lines


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{s}: {n}" for s, n in counts.items())


def verdict_lines(result: LoadTestResult, slo: str) -> list[str]:
    failed = [c for c in result.checks if not c.passed]
    if result.ramp_invalid_not_4xx:
        failed_ramp = f"{result.ramp_invalid_not_4xx} invalid bodies got no 4xx during a ramp"
    else:
        failed_ramp = ""
    if not failed and not failed_ramp:
        return [f"[bold green]PASS[/] SLO {slo or '(none)'}"]
    lines = [f"[bold red]FAIL[/] SLO {slo or '(none)'}"]
    lines += [f"  {c.step}: {c.objective} (measured {c.shown})" for c in failed]
    return lines + ([f"  {failed_ramp}"] if failed_ramp else [])
