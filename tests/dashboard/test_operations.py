"""The Live, Monitoring, Jobs and Load tests and doctor pages in a real browser, on a
real ``servewell serve``: each loads clean (no console error, no failed request) and
passes axe-core; Live draws points once traffic was sent; a slow job's progress bar
advances and an admin cancels it, while a viewer sees no button and has the POST
refused; Monitoring lists drift rows of logged predictions against the reference;
the doctor's checklist runs from the page. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

import monitored_models as monitored
from dashboard_browser import Visitor
from operations_home import build_operations_home
from servewell.bootstrap import build_services
from servewell.registration.register import register_file
from servewell.registry.loadtests import LoadTestStore
from servewell.settings import Settings
from serving_models import serve_process

ROW = [5.1, 3.5, 1.4, 0.2]
#: The longest a test waits for the page to show what it expects.
WAIT_MS = 30_000

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dashboard_keys(
    tmp_path_factory: pytest.TempPathFactory, classifier: Any, iris: tuple[np.ndarray, Any]
) -> tuple[Path, dict[str, str]]:
    home = tmp_path_factory.mktemp("operations") / "home"
    return home, build_operations_home(home, classifier, iris[0])


@pytest.fixture(scope="module")
def server(dashboard_keys: tuple[Path, dict[str, str]]) -> Iterator[str]:
    home, _ = dashboard_keys
    with serve_process(home, "--models", "iris,slow,loans", drain=True) as (url, _process):
        yield url


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


PAGES = [
    ("live", "/ui/live", "Breakers and queues"),
    ("monitoring", "/ui/monitoring", "Alerts"),
    ("jobs", "/ui/jobs", "Jobs"),
    ("checks", "/ui/checks", "Doctor: the production checklist"),
]


@pytest.mark.parametrize(("name", "path", "shows"), PAGES, ids=[page[0] for page in PAGES])
def test_page_loads_clean_and_accessible(
    visit: Any, keys: dict[str, str], name: str, path: str, shows: str
) -> None:
    visitor = visit()
    visitor.sign_in(keys["admin"])
    assert visitor.goto(path).status == 200
    assert shows in visitor.page.content()
    visitor.screenshot(f"{name}-first")
    visitor.check_accessibility()
    visitor.check()


def _send_iris(server: str, key: str, count: int) -> None:
    with httpx.Client(base_url=server, headers=_auth(key), timeout=30) as client:
        for _ in range(count):
            answer = client.post("/v1/models/iris:predict", json={"instances": [ROW]})
            assert answer.status_code == 200, answer.text


def _wait_for_points(visitor: Any, chart: str) -> Any:
    """The Live chart ``chart``, once uPlot drew a point on it."""
    visitor.page.wait_for_function(
        f"() => Number(document.querySelector('[data-chart=\"{chart}\"]')"
        ".getAttribute('data-points')) > 0",
        timeout=WAIT_MS,
    )
    return visitor.page.locator(f'[data-chart="{chart}"]')


def test_live_charts_have_points_after_traffic(
    visit: Any, server: str, keys: dict[str, str]
) -> None:
    visitor = visit()
    visitor.sign_in(keys["viewer"])
    visitor.goto("/ui/live")
    _send_iris(server, keys["caller"], 30)
    bad = httpx.post(
        f"{server}/v1/models/iris:predict",
        headers=_auth(keys["caller"]),
        json={"instances": [[1.0]]},
        timeout=30,
    )
    assert bad.status_code == 400
    rate = _wait_for_points(visitor, "requests_per_s")
    assert rate.locator("canvas").count() == 1  # uPlot drew it
    table = visitor.page.locator('table[data-table="requests_per_s"]')
    assert "iris@2" in table.inner_text()
    visitor.page.wait_for_function(  # the 400 is in the error rate's newest figures
        """() => Array.from(document.querySelectorAll('table[data-table="error_rate"] tr'))
            .some(row => Array.from(row.cells).slice(1)
                .some(cell => parseFloat(cell.textContent) > 0))""",
        timeout=WAIT_MS,
    )
    assert "closed" in visitor.page.locator("#live-state").inner_text()
    visitor.page.wait_for_timeout(500)
    visitor.screenshot("live-traffic")
    visitor.check_accessibility()


def test_live_charts_tell_time_in_24_hour_utc(
    browser: Any, server: str, keys: dict[str, str]
) -> None:
    """In a browser far from UTC, the time axis and legend read as the tables do."""
    context = browser.new_context(timezone_id="America/New_York", locale="en-US")
    visitor = Visitor(context, server, "new-york")
    try:
        visitor.sign_in(keys["viewer"])
        visitor.goto("/ui/live")
        _send_iris(server, keys["caller"], 10)
        chart = _wait_for_points(visitor, "requests_per_s")
        chart.locator(".u-over").hover(position={"x": 5, "y": 5})
        legend = chart.locator(".u-legend .u-series").first.locator(".u-value")
        shown = legend.inner_text()
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", shown), shown
        at = datetime.strptime(shown, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
        assert abs(datetime.now(UTC) - at) < timedelta(minutes=30)  # UTC, not New York's
        ticks = visitor.page.evaluate(  # the axis's tick labels at 13:05 and 23:40 UTC
            "servewellTime.axis().values({scales: {x: {min: 0, max: 3600}}},"
            " [47100, 85200], 0, 50, 300)"
        )
        assert ticks == ["13:05", "23:40"]
        visitor.screenshot("live-utc")
    finally:
        context.close()
    visitor.check()


def test_a_remote_models_page_shows_its_upstream_never_a_credential(
    visit: Any, keys: dict[str, str], dashboard_keys: tuple[Path, dict[str, str]]
) -> None:
    home, _ = dashboard_keys
    spec = {
        "kind": "openai",
        "url": "http://127.0.0.1:9/llm",
        "model": "gpt-upstream",
        "credential_env": "CHAT_TOKEN",
        "prices": {"input_per_1k": 0.0005, "output_per_1k": 0.0015},
    }
    path = home.parent / "chat.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    services = build_services(Settings(home=home))
    try:
        register_file(services, path, "chat", format="remote")
    finally:
        services.close()
    visitor = visit()
    visitor.sign_in(keys["viewer"])
    visitor.goto("/ui/models/chat")
    row = visitor.page.locator('#remote tr[data-version="1"]')
    cells = [cell.strip() for cell in row.locator("td").all_inner_texts()]
    assert cells == [
        "v1", "openai", "http://127.0.0.1:9/llm", "gpt-upstream", "from $CHAT_TOKEN",
        "0.0005", "0.0015",
    ]  # fmt: skip
    visitor.screenshot("model-remote")
    visitor.check_accessibility()
    assert visitor.goto("/ui/models/iris").status == 200
    assert visitor.page.locator("#remote").count() == 0  # a local model has no upstream


def _submit_slow_job(server: str, key: str, rows: int = 300) -> str:
    body = b"x\n" + b"1.0\n" * rows  # 5 rows a call, 100 ms a call: 6 s in all
    answer = httpx.post(
        f"{server}/v1/models/slow/jobs",
        headers=_auth(key),
        files={"file": ("rows.csv", body)},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def _progress(visitor: Any, job_id: str) -> float:
    """The job's progress bar's value (0 while the page reloads: a job that changes
    state reloads it)."""
    from playwright.sync_api import Error

    bar = visitor.page.locator(f'tr[data-job="{job_id}"] progress')
    try:
        return float(bar.evaluate("bar => bar.value", timeout=5000))
    except Error:
        return 0.0


def test_a_jobs_progress_advances_and_an_admin_cancels_it(
    visit: Any, server: str, keys: dict[str, str]
) -> None:
    visitor = visit()
    visitor.sign_in(keys["admin"])
    job_id = _submit_slow_job(server, keys["caller"])
    visitor.goto("/ui/jobs")
    row = visitor.page.locator(f'tr[data-job="{job_id}"]')
    deadline = time.monotonic() + WAIT_MS / 1000
    seen: list[float] = []
    while len(set(filter(None, seen))) < 2:  # two different values above 0: it moved
        assert time.monotonic() < deadline, f"the progress bar did not move: {seen}"
        seen.append(_progress(visitor, job_id))
        visitor.page.wait_for_timeout(200)
    moved = [value for value in seen if value > 0]
    assert moved == sorted(moved)
    visitor.screenshot("jobs-running")
    row.get_by_role("button", name="Cancel").click()
    visitor.page.wait_for_url(re.compile(rf".*/ui/jobs\?cancelled={job_id}$"))
    assert row.locator('[data-field="state"]').inner_text() == "cancelled"
    assert row.get_by_role("button", name="Cancel").count() == 0
    status = httpx.get(f"{server}/v1/jobs/{job_id}", headers=_auth(keys["admin"]), timeout=30)
    assert status.json()["state"] == "cancelled"
    visitor.screenshot("jobs-cancelled")
    visitor.check_accessibility()


def test_a_viewer_sees_no_cancel_button_and_the_post_is_refused(
    visit: Any, server: str, keys: dict[str, str]
) -> None:
    job_id = _submit_slow_job(server, keys["caller"], rows=100)
    visitor = visit()
    visitor.sign_in(keys["viewer"])
    visitor.goto("/ui/jobs")
    assert visitor.page.locator(f'tr[data-job="{job_id}"]').count() == 1
    assert visitor.page.get_by_role("button", name="Cancel").count() == 0
    token = visitor.page.locator('input[name="csrf_token"]').first.get_attribute("value")
    visitor.expected_statuses.add(403)
    refused = visitor.page.request.post(
        f"{server}/ui/jobs/{job_id}/cancel", form={"csrf_token": token or ""}
    )
    assert refused.status == 403
    status = httpx.get(f"{server}/v1/jobs/{job_id}", headers=_auth(keys["admin"]), timeout=30)
    assert status.json()["state"] != "cancelled"


def test_monitoring_shows_drift_rows_of_logged_predictions(
    visit: Any, server: str, keys: dict[str, str], dashboard_keys: tuple[Path, dict[str, str]]
) -> None:
    home, _ = dashboard_keys
    frame = monitored.loans(300, seed=2, shift=0.8).drop(columns=["late"])
    with httpx.Client(base_url=server, headers=_auth(keys["caller"]), timeout=30) as client:
        for start in [*range(0, len(frame), 50), 0]:  # the first batch again: a cache hit
            rows = frame.iloc[start : start + 50].to_dict(orient="records")
            answer = client.post(f"/v1/models/{monitored.MODEL}:predict", json={"instances": rows})
            assert answer.status_code == 200, answer.text
    services = build_services(Settings(home=home))
    try:
        logged = monitored.wait_for_rows(services, 7)
        assert len(logged) == 7  # a logged row a request
        assert [row.cached for row in logged].count(True) == 1
    finally:
        services.close()
    visitor = visit()
    visitor.sign_in(keys["viewer"])
    visitor.goto(f"/ui/monitoring?model={monitored.MODEL}&window=1h")
    amount = visitor.page.locator('tr[data-feature="amount"]')
    assert amount.count() == 3  # psi, ks, wasserstein
    assert "drift" in amount.first.inner_text()
    assert visitor.page.locator('tr[data-feature="plan"]').count() == 2  # psi, chisquare
    assert "no labels for this window" in visitor.page.content()
    assert f"POST /v1/models/{monitored.MODEL}/feedback" in visitor.page.content()
    assert "{name}" not in visitor.page.content()
    cached = visitor.page.locator("[data-cached]")
    assert cached.get_attribute("data-cached") == "1"
    assert "1 of the 7 logged answers came from the response cache" in cached.inner_text()
    assert "drift reads the other 6" in cached.inner_text()
    plot = visitor.page.locator("[data-plot]").first
    assert int(plot.get_attribute("data-points") or 0) > 0
    rule = visitor.page.locator('tr[data-rule="loans-amount-drift"]')
    deadline = time.monotonic() + WAIT_MS / 1000
    while "firing" not in rule.inner_text():  # the server evaluates the rule every 0.5 s
        assert time.monotonic() < deadline, f"the rule never fired: {rule.inner_text()}"
        visitor.page.wait_for_timeout(500)
        visitor.goto(f"/ui/monitoring?model={monitored.MODEL}&window=1h")
    assert "firing" in visitor.page.locator("#alert-events").inner_text()
    visitor.screenshot("monitoring-drift")
    visitor.check_accessibility()


def test_load_tests_and_the_doctor_run_from_the_page(
    visit: Any, keys: dict[str, str], dashboard_keys: tuple[Path, dict[str, str]]
) -> None:
    home, _ = dashboard_keys
    services = build_services(Settings(home=home))
    try:
        step = {"label": "c=1", "requests": 100, "throughput_rps": 50.0,
                "latency_ms": {"p50": 1.5, "p99": 4.0}, "error_rate": 0.0}  # fmt: skip
        LoadTestStore(services.registry).record(
            "iris", 2, passed=True, slo="p99<50ms", summary={"steps": [step]}, duration_s=2
        )
    finally:
        services.close()
    visitor = visit()
    visitor.sign_in(keys["viewer"])  # running the checklist changes nothing: a viewer may
    visitor.goto("/ui/checks")
    assert "iris@2" in visitor.page.content()
    assert "The checklist has not been run" in visitor.page.content()
    visitor.page.get_by_role("button", name="Run the checklist").click()
    findings = visitor.page.locator("#doctor-findings")
    findings.wait_for(timeout=WAIT_MS)
    text = findings.inner_text()
    assert "health checks" in text
    assert "load testing" in text
    visitor.screenshot("checks-doctor")
    visitor.check_accessibility()


def test_a_finished_jobs_results_download_from_the_page(
    visit: Any, server: str, keys: dict[str, str]
) -> None:
    job_id = _submit_slow_job(server, keys["caller"], rows=5)
    deadline = time.monotonic() + WAIT_MS / 1000
    while (
        httpx.get(f"{server}/v1/jobs/{job_id}", headers=_auth(keys["admin"]), timeout=30).json()[
            "state"
        ]
        != "succeeded"
    ):
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.1)
    viewer = visit()
    viewer.sign_in(keys["viewer"])
    viewer.goto("/ui/jobs")
    viewer_row = viewer.page.locator(f'tr[data-job="{job_id}"]')
    assert viewer_row.get_by_role("link", name="download").count() == 0  # not the viewer's job
    admin = visit()
    admin.sign_in(keys["admin"])
    admin.goto("/ui/jobs")
    row = admin.page.locator(f'tr[data-job="{job_id}"]')
    assert row.locator("progress").evaluate("bar => bar.value") == 1
    href = row.get_by_role("link", name="download").get_attribute("href")
    answer = admin.page.request.get(server + (href or ""))
    assert answer.status == 200
    lines = answer.text().strip().splitlines()
    assert len(lines) == 6  # a header and the five rows


def test_a_laptop_screen_needs_no_sideways_scroll(visit: Any, keys: dict[str, str]) -> None:
    visitor = visit()
    visitor.page.set_viewport_size({"width": 1024, "height": 700})
    visitor.sign_in(keys["admin"])
    for name, path in PAGES_1024:
        visitor.goto(path)
        visitor.screenshot(f"{name}-1024")
        overflow = visitor.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is {overflow} px wider than the screen"


PAGES_1024 = [
    ("live", "/ui/live"),
    ("monitoring", f"/ui/monitoring?model={monitored.MODEL}&window=1h"),
    ("jobs", "/ui/jobs"),
    ("checks", "/ui/checks"),
]
