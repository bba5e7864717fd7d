"""``servewell loadtest`` against a real ``servewell serve``: its counts are the server's
own, the SLO verdict (exit 6) follows the model's speed, open loop holds its rate,
invalid bodies all get a 4xx, the result is recorded, and the Locust file runs."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from servewell.bootstrap import build_services
from servewell.cli.app import app
from servewell.monitoring.profiling import profile_version
from servewell.registry.loadtests import LoadTestStore
from servewell.settings import Settings
from serving_models import (
    IRIS_FEATURES,
    PYTHON_MODELS,
    build_model_home,
    create_key,
    register_python,
    serve_process,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, classifier: Any, iris: tuple[np.ndarray, np.ndarray]
) -> Iterator[tuple[str, Path]]:
    """iris (v1 production, with a reference profile of its training rows) and the model
    that sleeps 100 ms, served with auth and rate limits off; the URL and the home."""
    home = build_model_home(tmp_path_factory.mktemp("loadtest") / "home", classifier, iris[0])
    table = home.parent / "iris.csv"
    with table.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(IRIS_FEATURES)
        writer.writerows(iris[0].tolist())
    services = build_services(Settings(home=home))
    try:
        register_python(services, "slow", "slow", artifacts=PYTHON_MODELS / "slow_artifacts")
        profile_version(services, services.registry.get_version("iris", 1), table)
    finally:
        services.close()
    no_limits = {"SERVEWELL_RATE_LIMITS__ENABLED": "false"}
    with serve_process(home, "--no-auth", "--models", "iris,slow", env=no_limits) as (url, _):
        yield url, home


@pytest.fixture
def loadtest(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Runs ``servewell loadtest URL ...`` beside the server (same registry)."""
    url, home = server
    monkeypatch.setenv("SERVEWELL_HOME", str(home))
    monkeypatch.delenv("SERVEWELL_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, dict[str, Any] | None, str]:
        out = tmp_path / "out.json"
        out.unlink(missing_ok=True)
        result = CliRunner().invoke(
            app, ["loadtest", url, *args, "--json", str(out)], catch_exceptions=False
        )
        document = json.loads(out.read_text()) if out.exists() else None
        return result.exit_code, document, result.output

    return run


def _requests_counted(url: str, model: str) -> int:
    """Every request the server counted for ``model``, any status."""
    text = httpx.get(f"{url}/metrics").text
    pattern = rf'^servewell_requests_total\{{[^}}]*model="{model}"[^}}]*\}} ([0-9.e+]+)$'
    return int(sum(float(v) for v in re.findall(pattern, text, flags=re.MULTILINE)))


def test_closed_loop_counts_are_the_servers_and_the_slo_passes(
    loadtest: Any, server: tuple[str, Path], tmp_path: Path
) -> None:
    url, home = server
    before = _requests_counted(url, "iris")
    page = tmp_path / "page.html"
    code, document, output = loadtest(
        "--model", "iris", "--concurrency", "1,4", "--duration", "2s",
        "--slo", "p99<5s,errors<1%", "--html", str(page),
    )  # fmt: skip
    assert code == 0, output
    assert document is not None
    assert document["passed"]
    assert document["version"] == 1
    assert document["settings"]["bodies"] == "registry profile"
    assert [step["label"] for step in document["steps"]] == ["c=1", "c=4"]
    assert all(step["errors"] == {} and step["requests"] > 0 for step in document["steps"])
    assert all(step["sent_late_ms"] is None for step in document["steps"])  # no intended time
    assert "sent late" not in output
    sent = document["sent"] + document["probe_requests"]
    assert _requests_counted(url, "iris") - before == sent
    assert document["sent"] == sum(step["requests"] for step in document["steps"])
    html = page.read_text()
    assert "data:image/png;base64," in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//|<script|<link|url\(""", html)
    services = build_services(Settings(home=home))
    try:
        recorded = LoadTestStore(services.registry).latest("iris", 1)
    finally:
        services.close()
    assert recorded is not None
    assert recorded.passed
    assert recorded.slo == "p99<5s,errors<1%"
    assert recorded.summary["sent"] == document["sent"]


def test_the_slo_fails_with_exit_6_against_the_sleeping_model(loadtest: Any) -> None:
    # The model sleeps 100 ms: a p50 bound of 10 ms fails with a 10x margin.
    code, document, output = loadtest(
        "--model", "slow", "--concurrency", "2", "--duration", "1s", "--slo", "p50<10ms"
    )
    assert code == 6, output
    assert document is not None
    assert not document["passed"]
    assert "FAIL" in output


def test_open_loop_holds_its_rate(loadtest: Any, server: tuple[str, Path]) -> None:
    url, _ = server
    before = _requests_counted(url, "iris")
    code, document, output = loadtest(
        "--model", "iris", "--rate", "50/s", "--duration", "4s", "--ramp", "1s"
    )
    assert code == 0, output
    assert document is not None
    step = document["steps"][0]
    assert step["throughput_rps"] == pytest.approx(50, rel=0.05)
    # The ramp (25 requests on the way from 0 to 50/s) is sent but not measured.
    assert document["sent"] == 225
    assert step["requests"] == pytest.approx(200, abs=1)
    assert 0 <= step["sent_late_ms"]["p50"] <= step["sent_late_ms"]["p99"]
    assert step["latency_from_send_ms"]["p50"] <= step["latency_ms"]["p50"]
    assert "50/s: sent late p50/p99" in output
    assert _requests_counted(url, "iris") - before == document["sent"] + document["probe_requests"]


@pytest.mark.parametrize("protocol", ["rest", "v2", "v2-binary"])
def test_generated_bodies_get_200_and_invalid_ones_a_4xx(loadtest: Any, protocol: str) -> None:
    code, document, output = loadtest(
        "--model", "iris", "--protocol", protocol, "--concurrency", "2", "--duration", "1s",
        "--rows-per-request", "3", "--invalid-share", "0.2",
    )  # fmt: skip
    assert code == 0, output
    assert document is not None
    step = document["steps"][0]
    assert step["errors"] == {}
    assert step["requests"] > 0
    assert step["invalid_requests"] > 0
    assert all(status.startswith("4") for status in step["invalid_statuses"]), step


def test_bad_options_are_one_line_and_exit_2(loadtest: Any) -> None:
    code, _, output = loadtest("--model", "iris", "--concurrency", "2", "--rate", "5/s")
    assert code == 2
    assert "either --concurrency" in output
    code, _, output = loadtest("--model", "iris", "--rate", "5/s", "--slo", "p99<<1")
    assert code == 2
    assert "does not read" in output
    for rate, ramp in (("0.5/s", "0s"), ("1/s", "1s")):
        code, _, output = loadtest(
            "--model", "iris", "--rate", rate, "--ramp", ramp, "--duration", "1s"
        )
        assert code == 2
        assert "no request to measure" in output


def test_a_model_the_server_does_not_serve_exits_4(loadtest: Any) -> None:
    code, _, _ = loadtest("--model", "nobody", "--rate", "5/s")
    assert code == 4


@pytest.mark.parametrize(
    ("model", "slo", "expected"), [("iris", "p99<5s", 0), ("slow", "p50<10ms", 6)]
)
def test_the_locust_file_runs_headless(
    loadtest: Any, server: tuple[str, Path], tmp_path: Path, model: str, slo: str, expected: int
) -> None:
    url, _ = server
    script = tmp_path / "load.py"
    code, _, output = loadtest(
        "--model", model, "--concurrency", "2", "--duration", "2s", "--slo", slo,
        "--invalid-share", "0.1", "--locustfile", str(script),
    )  # fmt: skip
    assert code == 0, output
    locust = Path(sys.executable).parent / "locust"
    ran = subprocess.run(
        [str(locust), "-f", str(script), "--headless", "--host", url, "-u", "2", "-r", "2",
         "-t", "3s", "--only-summary"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == expected, ran.stdout + ran.stderr
    assert "servewell SLO" in ran.stdout + ran.stderr


def test_a_server_with_keys_is_loaded_with_one_and_refuses_without(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    classifier: Any,
    iris: tuple[np.ndarray, np.ndarray],
) -> None:
    home = build_model_home(tmp_path / "home", classifier, iris[0])
    token = create_key(home, "load", models=("iris",))
    monkeypatch.setenv("SERVEWELL_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    no_limits = {"SERVEWELL_RATE_LIMITS__ENABLED": "false"}
    with serve_process(home, "--models", "iris", env=no_limits) as (url, _):
        args = ["loadtest", url, "--model", "iris", "--concurrency", "2", "--duration", "1s"]
        refused = CliRunner().invoke(app, args, catch_exceptions=False)
        assert refused.exit_code == 2, refused.output
        loaded = CliRunner().invoke(app, [*args, "--api-key", token], catch_exceptions=False)
    assert loaded.exit_code == 0, loaded.output
    assert "none" in loaded.output  # no errors by status


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers (nor reads)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # the listener closed: the test is over
            while True:
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for connection in held:
            connection.close()


def test_a_server_that_never_answers_is_given_up_after_the_timeout(
    silent_server: str, tmp_path: Path
) -> None:
    """The metadata request before the load waits ``--timeout`` too (it waited 30 s
    whatever the option said): a bounded run, exit 2, the reason in one line."""
    servewell = Path(sys.executable).parent / "servewell"
    command = [str(servewell), "loadtest", silent_server, "--model", "m", "--rate", "5/s",
               "--timeout", "1s"]  # fmt: skip
    env = {**os.environ, "SERVEWELL_HOME": str(tmp_path / "home")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=25, env=env)
    assert done.returncode == 2
    assert "timed out" in done.stderr
    assert "Traceback" not in done.stderr
