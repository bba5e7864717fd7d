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
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import monitored_models as monitored
from operations_home import build_operations_home
from servewell.bootstrap import build_services
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


def test_live_charts_have_points_after_traffic(
    visit: Any, server: str, keys: dict[str, str]
) -> None:
    visitor = visit()
    visitor.sign_in(keys["viewer"])
    visitor.goto("/ui/live")
    with httpx.Client(base_url=server, headers=_auth(keys["caller"]), timeout=30) as client:
        for _ in range(30):
            answer = client.post("/v1/models/iris:predict", json={"instances": [ROW]})
            assert answer.status_code == 200, answer.text
        bad = client.post("/v1/models/iris:predict", json={"instances": [[1.0]]})
        assert bad.status_code == 400
    rate = visitor.page.locator('[data-chart="requests_per_s"]')
    visitor.page.wait_for_function(
        "() => Number(document.querySelector('[data-chart=\"requests_per_s\"]')"
        ".getAttribute('data-points')) > 0",
        timeout=WAIT_MS,
    )
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
        for start in range(0, len(frame), 50):
            rows = frame.iloc[start : start + 50].to_dict(orient="records")
            answer = client.post(f"/v1/models/{monitored.MODEL}:predict", json={"instances": rows})
            assert answer.status_code == 200, answer.text
    services = build_services(Settings(home=home))
    try:
        assert len(monitored.wait_for_rows(services, 6)) == 6  # a logged row a request
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
