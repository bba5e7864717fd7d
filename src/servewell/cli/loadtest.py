"""``servewell loadtest``: load a running server with bodies it must accept (and a share
it must refuse), judge an SLO, and record the result against the version that answered.

Exit codes: 0 the SLO held, 6 it failed (or an invalid body got anything but a 4xx),
2 bad options or an unreachable server, 4 a model the server does not serve.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from servewell.cli.output import console, errors, reporting_errors, who_am_i
from servewell.errors import InvalidInput

if TYPE_CHECKING:
    from servewell.loadtest.bodies import RequestSet
    from servewell.loadtest.report import RunContext
    from servewell.loadtest.run import LoadTestResult, Plan
    from servewell.registry.access import RegistryAccess

SLO_FAILED = 6
_RATE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(?:/s)?\s*$")


def loadtest(
    url: str = typer.Argument(..., help="The server, e.g. http://127.0.0.1:8000."),
    model: str = typer.Option(..., "--model", help="The model to load."),
    version: int | None = typer.Option(None, "--version", help="This version."),
    protocol: str = typer.Option("rest", "--protocol", help="rest, v2 or v2-binary."),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="SERVEWELL_API_KEY", help="A prediction key."
    ),
    concurrency: str | None = typer.Option(
        None, "--concurrency", help="Closed loop: connections per step, e.g. 1,16,64."
    ),
    rate: str | None = typer.Option(None, "--rate", help="Open loop: e.g. 500/s."),
    duration: str = typer.Option("30s", "--duration", help="How long each step is measured."),
    ramp: str = typer.Option("0s", "--ramp", help="Warm-up before each step (not measured)."),
    body: Path | None = typer.Option(
        None, "--body", help="Send this JSON body instead of generated ones."
    ),
    rows_per_request: int = typer.Option(
        1, "--rows-per-request", min=1, max=10_000, help="Rows in each generated body."
    ),
    invalid_share: float = typer.Option(
        0.0, "--invalid-share", min=0.0, max=0.5, help="Share of bodies that must get a 4xx."
    ),
    slo: str = typer.Option("", "--slo", help='e.g. "p99<50ms,errors<0.1%".'),
    json_out: Path | None = typer.Option(None, "--json", help="Write the result as JSON here."),
    html: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML page here."),
    locustfile: Path | None = typer.Option(
        None, "--locustfile", help="Write a Locust file with the same load, and stop."
    ),
    timeout: str = typer.Option("30s", "--timeout", help="Longest wait for one answer."),
) -> None:
    """Load URL's MODEL and judge an SLO (exit 6 when it fails)."""
    from servewell.loadtest.bodies import PROTOCOLS
    from servewell.loadtest.client import Target
    from servewell.loadtest.report import RunContext

    with reporting_errors():
        if protocol not in PROTOCOLS:
            raise InvalidInput(f"--protocol is one of {', '.join(PROTOCOLS)}, not '{protocol}'")
        plan = _plan(concurrency, rate, duration, ramp, slo, timeout)
        target = Target.parse(url)
        context = RunContext(target.url, model, protocol, "", rows_per_request, invalid_share)
        with _local_registry() as access:
            requests, context = _requests(
                target, context, version, api_key, body, access, plan.timeout_s
            )
            if locustfile is not None:
                _write_locustfile(locustfile, requests, plan, model, target.url)
                return
            probed = _probe(target, requests, plan.timeout_s)
            result = _run(plan, target, requests)
            number = _answered_version(result, probed or version)
            _report(result, plan, context, number, json_out, html)
            _record(access, result, plan, context, number)
    if not result.passed:
        raise typer.Exit(SLO_FAILED)


def _plan(
    concurrency: str | None, rate: str | None, duration: str, ramp: str, slo: str, timeout: str
) -> Plan:
    from servewell.loadtest.run import Plan
    from servewell.loadtest.schedule import Step, open_loop_requests
    from servewell.loadtest.slo import parse_slo

    if (concurrency is None) == (rate is None):
        raise InvalidInput("give either --concurrency (e.g. 1,16,64) or --rate (e.g. 500/s)")
    duration_s, ramp_s, timeout_s = (
        _seconds(name, text)
        for name, text in (("--duration", duration), ("--ramp", ramp), ("--timeout", timeout))
    )
    if duration_s <= 0 or timeout_s <= 0:
        raise InvalidInput("--duration and --timeout must be more than 0")
    if concurrency is not None:
        steps = [
            Step(f"c={n}", duration_s, ramp_s, concurrency=n) for n in _concurrencies(concurrency)
        ]
    else:
        per_s = _rate(str(rate))
        if open_loop_requests(per_s, ramp_s, duration_s)[1] < 1:
            raise InvalidInput(
                f"--rate {per_s:g}/s over --duration {duration} has no request to measure: "
                "give a higher --rate or a longer --duration"
            )
        steps = [Step(f"{per_s:g}/s", duration_s, ramp_s, rate_per_s=per_s)]
    return Plan(steps, parse_slo(slo), slo, timeout_s)


def _seconds(option: str, text: str) -> float:
    from servewell.settings.monitoring import parse_duration_s

    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise InvalidInput(f"{option}: {exc}") from None


def _concurrencies(text: str) -> list[int]:
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() and 1 <= int(part) <= 10_000 for part in parts):
        raise InvalidInput(
            f"--concurrency '{text}': give connections per step, 1 to 10000, e.g. 1,16,64"
        )
    return [int(part) for part in parts]


def _rate(text: str) -> float:
    found = _RATE.match(text)
    if found is None or not 0 < float(found.group(1)) <= 1_000_000:
        raise InvalidInput(f"--rate '{text}': give requests per second, e.g. 500/s")
    return float(found.group(1))


class _local_registry:
    """The registry this machine reads (for the profile and the record), or None when
    there is none to read: a load test of a remote server needs none."""

    def __enter__(self) -> RegistryAccess | None:
        from servewell.bootstrap import build_services
        from servewell.errors import ServewellError
        from servewell.settings import load_settings

        try:
            self.services: Any = build_services(load_settings())
        except ServewellError as exc:
            errors.print(
                f"no registry here ({exc.message}): bodies from the signature, nothing recorded"
            )
            self.services = None
        return self.services  # type: ignore[no-any-return]

    def __exit__(self, *exc: Any) -> None:
        if self.services is not None:
            self.services.close()


def _requests(
    target: Any, context: RunContext, version: int | None, api_key: str | None,
    body: Path | None, access: RegistryAccess | None, timeout_s: float,
) -> tuple[RequestSet, RunContext]:  # fmt: skip
    """The prepared requests, and the context saying where their bodies came from
    (the metadata request waits ``timeout_s`` at most)."""
    from dataclasses import replace

    from servewell.loadtest.bodies import build_requests, generated_bodies, given_body
    from servewell.loadtest.source import fetch_metadata, model_source

    model, protocol = context.model, context.protocol
    metadata = fetch_metadata(target, model, version, api_key, timeout_s)
    if body is not None:
        if protocol == "v2-binary":
            raise InvalidInput("--body is JSON: use it with --protocol rest or v2")
        try:
            raw = body.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read {body}: {exc.strerror}") from None
        bodies, origin = given_body(model, version, protocol, raw), "file"
    else:
        source = model_source(metadata, model, version, access)
        bodies = generated_bodies(
            model, version, source.signature, source.profile, protocol, context.rows_per_request
        )
        origin = source.origin + (" profile" if source.profile else " signature")
    requests = build_requests(target, model, version, bodies, api_key, context.invalid_share)
    return requests, replace(context, bodies=origin)


def _run(plan: Plan, target: Any, requests: RequestSet) -> LoadTestResult:
    from servewell.cli.loadtest_view import LiveView, open_loop_lines, result_table
    from servewell.loadtest.run import run_load_test

    with LiveView(errors) as view:
        result = run_load_test(plan, target, requests, view.tick)
    console.print(result_table(result))
    for line in open_loop_lines(result):
        console.print(line, highlight=False, soft_wrap=True)
    return result


def _probe(target: Any, requests: RequestSet, timeout_s: float) -> int | None:
    from servewell.loadtest.source import probe_version

    return probe_version(target, requests.path, requests.valid[0], requests.headers, timeout_s)


def _answered_version(result: LoadTestResult, asked: int | None) -> int | None:
    answered = result.answered_version()
    return int(answered) if answered is not None and answered.isdigit() else asked


def _report(
    result: LoadTestResult, plan: Plan, context: RunContext, number: int | None,
    json_out: Path | None, html: Path | None,
) -> None:  # fmt: skip
    import json

    from servewell.cli.loadtest_view import verdict_lines
    from servewell.loadtest.report import to_document
    from servewell.reports.loadtest_page import loadtest_html

    for line in verdict_lines(result, plan.slo):
        console.print(line, highlight=False)
    document = to_document(result, plan, context, number)
    if json_out is not None:
        _write(json_out, json.dumps(document, indent=2) + "\n")
    if html is not None:
        _write(html, loadtest_html(document))


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None


def _record(
    access: RegistryAccess | None, result: LoadTestResult, plan: Plan, context: RunContext,
    number: int | None,
) -> None:  # fmt: skip
    from servewell.errors import ServewellError
    from servewell.loadtest.report import plan_settings
    from servewell.registry.loadtests import LoadTestStore

    if access is None or number is None:
        return
    try:
        LoadTestStore(access.registry).record(
            context.model, number, passed=result.passed, slo=plan.slo, summary=result.summary(),
            started_at=result.started_at, duration_s=result.duration_s, protocol=context.protocol,
            settings=plan_settings(plan, context), by=who_am_i(),
        )  # fmt: skip
    except ServewellError as exc:
        errors.print(f"warning: not recorded in the registry: {exc.message}")
        return
    errors.print(f"recorded against {context.model}@{number}")


def _write_locustfile(path: Path, requests: RequestSet, plan: Plan, model: str, url: str) -> None:
    from servewell.loadtest.locust import locust_file

    text = locust_file(
        requests, plan.steps, plan.objectives, plan.slo, model=model, url=url, name=path.name
    )
    _write(path, text)
    console.print(f"wrote {path}: locust -f {path} --headless --host {url}")
