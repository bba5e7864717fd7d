"""Zero-downtime promote and rollback, on real ``servewell serve`` processes sharing one
registry: an alias moved with the CLI reaches both servers (the new version loaded
before it answers, the old one unloaded after), ten promotes and rollbacks under load
at c=32 answer every request with 200 from the old or the new version and leave only
the current version loaded, and the V2 model-repository extension through tritonclient.
No timing assertions: waits are polls with generous bounds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from servewell.bootstrap import Services, build_services
from servewell.core.ref import ModelRef
from servewell.core.traffic import Arm, Shadow
from servewell.http import create_app
from servewell.registry.traffic import TrafficStore
from servewell.settings import AuthSettings, ServerSettings, Settings
from serving_models import create_key, register_python, serve_in_thread, serve_process

CLIENT_TIMEOUT_S = 60.0
WAIT_S = 60.0  # generous: the machine is shared; the servers poll every 0.5 s
ENV = {"SERVEWELL_RATE_LIMITS__ENABLED": "false"}
CONCURRENCY = 32
PROMOTES = 10
BODY = {"instances": [{"x": 1, "y": 2}]}

Served = AbstractContextManager[tuple[str, "subprocess.Popen[str]"]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Model 'fraud' with versions 1-3 (the sum model), production -> 1."""
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    try:
        for _ in range(3):
            register_python(services, "fraud", "sum", signature="sum.json")
        services.registry.set_alias("fraud", "production", 1)
    finally:
        services.close()
    return home


@pytest.fixture
def registry(home: Path) -> Iterator[Services]:
    services = build_services(Settings(home=home))
    yield services
    services.close()


@pytest.fixture
def serve(home: Path) -> Callable[..., Served]:
    """Starts one more server on ``home`` serving 'fraud' each time it is called."""
    return lambda *args: serve_process(
        home, "--models", "fraud", *(args or ("--no-auth",)), env=ENV, drain=True
    )


def _cli(home: Path, *args: str) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "servewell"), *args],
        env={**os.environ, "SERVEWELL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _version(url: str, path: str = "fraud") -> int:
    answer = httpx.post(f"{url}/v1/models/{path}:predict", json=BODY, timeout=CLIENT_TIMEOUT_S)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["version"])


def _loaded(url: str) -> list[int]:
    answer = httpx.get(f"{url}/v1/models/fraud", timeout=CLIENT_TIMEOUT_S)
    assert answer.status_code == 200, answer.text
    return sorted(int(v["version"]) for v in answer.json()["model_version_status"])


def _poll(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def test_an_alias_set_with_the_cli_reaches_both_servers_and_the_old_version_goes(
    home: Path, serve: Callable[..., Served]
) -> None:
    with serve() as (first, _), serve() as (second, _):
        assert _version(first) == _version(second) == 1
        _cli(home, "alias", "set", "fraud", "production", "3")
        for url in (first, second):
            _poll(lambda url=url: _version(url) == 3, f"{url} answers with version 3")
            _poll(lambda url=url: _loaded(url) == [3], f"{url} unloads version 1")
            pinned = httpx.post(f"{url}/v1/models/fraud/versions/1:predict", json=BODY)
            assert pinned.status_code == 404, pinned.text
            assert "served versions: 3" in pinned.json()["error"]
            assert _version(url, "fraud/versions/3") == 3
        _cli(home, "rollback", "fraud")
        for url in (first, second):
            _poll(lambda url=url: _version(url) == 1, f"{url} rolls back to version 1")
            _poll(lambda url=url: _loaded(url) == [1], f"{url} unloads version 3")


class Load:
    """``CONCURRENCY`` threads sending requests for the bare name until stopped;
    every answer's status and version, counted."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: Counter[tuple[int, int | None]] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send) for _ in range(CONCURRENCY)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_TIMEOUT_S * 2)

    def _send(self) -> None:
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
            while not self._stop.is_set():
                answer = client.post(f"{self.url}/v1/models/fraud:predict", json=BODY)
                version = answer.json().get("version") if answer.status_code == 200 else None
                with self._lock:
                    self.answers[(answer.status_code, version)] += 1


def test_ten_promotes_and_rollbacks_under_load_answer_every_request(
    registry: Services, serve: Callable[..., Served]
) -> None:
    with serve() as (url, _), Load(url) as load:
        _poll(lambda: sum(load.answers.values()) > CONCURRENCY, "the load runs")
        for _ in range(PROMOTES):
            registry.registry.set_alias("fraud", "production", 2, by="user:test")
            _poll(lambda: _version(url) == 2, "the promote to version 2 is served")
            registry.registry.rollback("fraud")
            _poll(lambda: _version(url) == 1, "the rollback to version 1 is served")
        _poll(lambda: _loaded(url) == [1], "only version 1 stays loaded")
    statuses = Counter(status for status, _ in load.answers.elements())
    assert statuses == {200: statuses[200]}, load.answers
    assert {version for _, version in load.answers} == {1, 2}, load.answers


def test_the_repository_extension_through_tritonclient(
    home: Path, serve: Callable[..., Served]
) -> None:
    tritonclient_http = pytest.importorskip("tritonclient.http")
    from tritonclient.utils import InferenceServerException

    admin = {"Authorization": f"Bearer {create_key(home, 'ops', scopes=('admin',))}"}
    user = {"Authorization": f"Bearer {create_key(home, 'app')}"}
    with serve("--workers", "1") as (url, _):  # keys on
        client = tritonclient_http.InferenceServerClient(url.removeprefix("http://"))
        try:
            index = client.get_model_repository_index(headers=admin)
            assert index == [{"name": "fraud", "version": "1", "state": "READY", "reason": ""}]
            with pytest.raises(InferenceServerException, match="admin"):
                client.unload_model("fraud", headers=user)
            client.unload_model("fraud", headers=admin)
            assert not client.is_model_ready("fraud", headers=user)
            assert client.is_server_ready()  # an operator's unload is not a failure
            _poll(
                lambda: (
                    client.get_model_repository_index(headers=admin)
                    == [{"name": "fraud", "state": "UNAVAILABLE", "reason": "not loaded"}]
                ),
                "fraud unloaded",
            )
            gone = httpx.post(f"{url}/v1/models/fraud:predict", json=BODY, headers=user)
            assert gone.status_code == 404, gone.text
            client.load_model("fraud", headers=admin)
            assert client.is_model_ready("fraud", headers=user)
            answer = httpx.post(f"{url}/v1/models/fraud:predict", json=BODY, headers=user)
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == 1
            with pytest.raises(InferenceServerException, match="not registered"):
                client.load_model("nothing", headers=admin)
        finally:
            client.close()


def test_an_unloaded_version_is_freed(registry: Services, home: Path) -> None:
    """After a promote, nothing holds the old version's deployment or its runtime any
    more: both are garbage (the server froze the collector after loading them)."""
    settings = Settings(
        home=home, auth=AuthSettings(enabled=False), server=ServerSettings(models=["fraud"])
    )
    app = create_app(settings)
    with serve_in_thread(app) as server:
        old = app.running.pool.get("fraud")
        deployment, runtime = weakref.ref(old), weakref.ref(old.runtime)
        del old
        registry.registry.set_alias("fraud", "production", 2)
        _poll(lambda: _loaded(server.url) == [2], "version 1 unloaded")
        _poll(lambda: deployment() is None and runtime() is None, "version 1 freed")


def test_a_promoted_version_gets_its_fallback_chain_and_chain_targets_stay_loaded(
    tmp_path: Path,
) -> None:
    """risk: v1 answers y = x, v2 and v3 always fail; fallbacks ["risk@stable"]."""
    artifacts = tmp_path / "switch-artifacts"
    artifacts.mkdir()
    (artifacts / "config.json").write_text('{"fail_while": "/nonexistent/file"}')
    home = tmp_path / "risk-home"
    services = build_services(Settings(home=home))
    try:
        register_python(services, "risk", "switch", artifacts=artifacts)
        register_python(services, "risk", "always_fails")
        register_python(services, "risk", "always_fails")
        services.registry.set_alias("risk", "stable", 1)
        services.registry.set_alias("risk", "production", 2)
        settings = Settings.model_validate(
            {
                "home": home,
                "server": {"models": ["risk", "risk@stable"]},
                "auth": {"enabled": False},
                "rate_limits": {"enabled": False},
                "models": {"risk": {"fallbacks": ["risk@stable"]}},
            }
        )
        app = create_app(settings)
        with serve_in_thread(app) as server:
            url = server.url

            def answered_by() -> tuple[int, str | None]:
                body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [7]}]}
                answer = httpx.post(f"{url}/v2/models/risk/infer", json=body, timeout=60)
                assert answer.status_code == 200, answer.text
                return answer.json()["model_version"], answer.headers.get("x-servewell-served-by")

            def loaded() -> list[int]:
                answer = httpx.get(f"{url}/v1/models/risk", timeout=60).json()
                return sorted(int(v["version"]) for v in answer["model_version_status"])

            assert answered_by() == ("1", "risk@1; fallback=error")
            services.registry.set_alias("risk", "production", 3)
            _poll(lambda: loaded() == [1, 3], "v3 served, v2 unloaded")
            assert answered_by() == ("1", "risk@1; fallback=error")  # v3's own chain
            services.registry.set_alias("risk", "stable", 3)
            running = app.running
            stable = ModelRef("risk", alias="stable")
            _poll(lambda: running.pool.held[stable].number == 3, "risk@stable follows")
            loaded()  # the loop has finished the step that moved it
            _poll(lambda: not running.promoter.retiring(), "nothing left retiring")
            assert loaded() == [1, 3]  # v3's chain names risk@1, which stays
            assert answered_by() == ("1", "risk@1; fallback=error")
    finally:
        services.close()


def test_the_repository_routes_refuse_bad_requests_with_a_4xx(home: Path) -> None:
    settings = Settings(
        home=home, auth=AuthSettings(enabled=False), server=ServerSettings(models=["fraud"])
    )
    with serve_in_thread(create_app(settings)) as server:
        repository = f"{server.url}/v2/repository"
        bad_name = httpx.post(f"{repository}/models/bad%20name/load")
        assert bad_name.status_code == 400, bad_name.text
        assert "model name" in bad_name.json()["error"]
        not_served = httpx.post(f"{repository}/models/other/unload")
        assert not_served.status_code == 404, not_served.text
        not_json = httpx.post(f"{repository}/index", content=b"{nope")
        assert not_json.status_code == 400, not_json.text
        ready_only = httpx.post(f"{repository}/index", json={"ready": True})
        assert [entry["state"] for entry in ready_only.json()] == ["READY"]
        assert httpx.post(f"{repository}/models/fraud/unload").status_code == 200
        assert httpx.post(f"{repository}/index", json={"ready": True}).json() == []


def test_a_load_that_fails_says_why_and_the_index_keeps_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEEDS_ENV_TOKEN", "for the registration's proof")
    services = build_services(Settings(home=home))
    try:
        register_python(services, "needy", "needs_env")
    finally:
        services.close()
    monkeypatch.delenv("NEEDS_ENV_TOKEN")
    settings = Settings(
        home=home, auth=AuthSettings(enabled=False), server=ServerSettings(models=["fraud"])
    )
    with serve_in_thread(create_app(settings)) as server:
        repository = f"{server.url}/v2/repository"
        failed = httpx.post(f"{repository}/models/needy/load")
        assert failed.status_code == 422, failed.text  # the model's own load error
        assert "NEEDS_ENV_TOKEN" in failed.json()["error"]
        index = {entry["name"]: entry for entry in httpx.post(f"{repository}/index").json()}
        assert index["needy"]["state"] == "UNAVAILABLE"
        assert "NEEDS_ENV_TOKEN" in index["needy"]["reason"]
        assert index["fraud"]["state"] == "READY"
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200


def test_a_promote_keeps_the_versions_a_split_and_a_shadow_name_loaded(
    registry: Services, home: Path
) -> None:
    traffic = TrafficStore(registry.registry)
    traffic.set_shadow("fraud", Shadow("3", 50))
    settings = Settings(
        home=home, auth=AuthSettings(enabled=False), server=ServerSettings(models=["fraud"])
    )
    with serve_in_thread(create_app(settings)) as server:
        assert _loaded(server.url) == [1, 3]
        registry.registry.set_alias("fraud", "production", 2)
        _poll(lambda: _loaded(server.url) == [2, 3], "v2 served, v1 unloaded, v3 kept")
        traffic.set_split("fraud", [Arm("production", 50), Arm("1", 50)])
        _poll(lambda: _loaded(server.url) == [1, 2, 3], "the split's arm v1 loaded")
        traffic.clear("fraud")
        _poll(lambda: _loaded(server.url) == [2], "only the default left")
        assert _version(server.url) == 2


def _samples(url: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of metric ``name`` a server shows, by their labels."""
    text = httpx.get(f"{url}/metrics", timeout=CLIENT_TIMEOUT_S).text
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_a_promote_over_the_memory_budget_keeps_the_old_version_serving(
    home: Path, registry: Services
) -> None:
    """fraud@3 was measured at 4 GiB (on a bigger machine); a server with a 256 MB
    budget keeps answering with version 1 after production moves to 3, and says why:
    a log line, a metric, and 507 with the numbers for an operator's load."""
    registry.registry.record_memory("fraud", 3, 4 * 2**30)
    log: list[str] = []
    env = {**ENV, "SERVEWELL_SERVER__MEMORY_BUDGET_MB": "256"}
    refused = frozenset({("model", "fraud"), ("version", "3"), ("reason", "memory_budget")})
    with serve_process(home, "--models", "fraud", "--no-auth", env=env, log=log) as (url, _):
        assert _version(url) == 1
        registry.registry.set_alias("fraud", "production", 3, by="user:test")
        _poll(
            lambda: _samples(url, "servewell_model_load_refusals_total").get(refused) == 1,
            "the promote to version 3 is refused",
        )
        assert _version(url) == 1
        status = httpx.get(f"{url}/v1/models/fraud", timeout=CLIENT_TIMEOUT_S).json()
        states = {s["version"]: s["state"] for s in status["model_version_status"]}
        assert states == {"1": "AVAILABLE", "3": "END"}  # END: the refusal, in its status
        memory = _samples(url, "servewell_model_memory_bytes")
        assert list(memory) == [frozenset({("model", "fraud"), ("version", "1")})]
        assert 0 < memory[frozenset({("model", "fraud"), ("version", "1")})] < 256 * 2**20
        assert _samples(url, "servewell_process_resident_memory_bytes")[frozenset()] > 0

        load = httpx.post(f"{url}/v2/repository/models/fraud/load", timeout=CLIENT_TIMEOUT_S)
        assert load.status_code == 507, load.text
        needed, held, budget = re.findall(r"([\d,.]+) MB", load.json()["error"])  # V2's shape
        assert (needed, budget) == ("4,096.0", "256.0"), load.text
        assert 0 < float(held) < 256, load.text
        assert _version(url) == 1
    lines = [json.loads(line) for line in "".join(log).splitlines() if line.startswith("{")]
    refusals = [line for line in lines if "over the memory budget" in line.get("message", "")]
    assert refusals, lines[-20:]
    assert refusals[0]["needed_bytes"] == 4 * 2**30


def test_a_version_measured_at_its_first_load_is_counted_by_its_measure_after(
    registry: Services, home: Path
) -> None:
    """A promote within the budget: version 2 is measured and stored when the server
    loads it; its gauge replaces version 1's once version 1 is unloaded."""
    settings = Settings(
        home=home, auth=AuthSettings(enabled=False), server=ServerSettings(models=["fraud"])
    )
    with serve_in_thread(create_app(settings)) as server:
        assert registry.registry.get_version("fraud", 1).memory_bytes is not None
        assert registry.registry.get_version("fraud", 2).memory_bytes is None
        registry.registry.set_alias("fraud", "production", 2)
        _poll(lambda: _loaded(server.url) == [2], "version 2 served alone")
        measured = registry.registry.get_version("fraud", 2).memory_bytes
        assert measured is not None
        assert measured > 0
        _poll(
            lambda: (
                _samples(server.url, "servewell_model_memory_bytes")
                == {frozenset({("model", "fraud"), ("version", "2")}): measured}
            ),
            "only version 2's memory is shown",
        )
