"""The many-replica topology on loopback (deploy/local/topology.py), under load through
nginx: an alias move and a key's revocation reach both replicas, a per-key rate limit
holds across them, Prometheus scrapes both, a batch job submitted through nginx runs on
the Celery worker and its results are the same from either replica, a rolling restart
loses no request and a SIGKILL loses at most the requests in flight. Bounded waits
only, no timings."""

from __future__ import annotations

import csv
import io
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from deploy_tools import DEPLOY, find_tool, load_script
from job_calls import wait_for_job
from servewell.bootstrap import build_services
from servewell.jobs.workers import TASK, celery_app
from servewell.registry.keys import ApiKeyStore
from servewell.settings import JobsSettings, Settings
from serving_models import register_adder

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LOAD_CLIENTS = 4
RATE_LIMIT = 10
ADDER = "/v2/models/adder/infer"
JOB_ROWS = 500


topology_module = load_script(DEPLOY / "local" / "topology.py", "servewell_local_topology")


def _body(value: float) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [value]},
            {"name": "y", "datatype": "FP32", "shape": [1, 1], "data": [1.0]},
        ]
    }


@dataclass
class Load:
    """Clients sending requests through nginx without pause, counting what failed."""

    url: str
    key: str
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        # A connection a request: nginx's reload (part of a rolling restart) closes its
        # old workers' idle keep-alive connections, and a request sent on one just then
        # fails in the client (the keep-alive race every HTTP client has), which is not
        # what this measures: nginx to the replicas.
        headers = {"Authorization": f"Bearer {self.key}", "Connection": "close"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=60) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(ADDER, json=_body(random.random()))
                    outcome = None if response.status_code == 200 else str(response.status_code)
                except httpx.TransportError as exc:
                    outcome = type(exc).__name__
                with self._lock:
                    if outcome is None:
                        self.ok += 1
                    else:
                        self.failed.append(outcome)

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        """The failures from the start of the block to its end, and the block's own count
        of successes (at least one more request must have passed through)."""
        start_ok, start_failed = self.ok, len(self.failed)
        failures: list[str] = []
        yield failures
        topology_module.wait_for("more requests through nginx", lambda: self.ok > start_ok + 20)
        failures.extend(self.failed[start_failed:])

    def stop(self) -> None:
        self._stop.set()


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str) -> Iterator[Any]:
    for tool, hint in (
        ("nginx", "apt-get install nginx-light"),
        ("prometheus", "apt-get install prometheus"),
        ("redis-server", "apt-get install redis-server"),
    ):
        find_tool(tool, f"{hint} (.ci/run does)")
    made = topology_module.Topology(
        tmp_path_factory.mktemp("topology"), admin_url=postgres_admin_url
    )
    made.prepare()
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="module")
def keys(topology: Any) -> dict[str, str]:
    """adder v1 and v2 (no alias: v2 is served), and the keys the tests use."""
    settings = Settings(
        home=topology.folder / "cli",
        database_url=topology.database_url,
        artifacts_dir=topology.folder / "artifacts",
    )
    services = build_services(settings)
    try:
        register_adder(services, topology.folder)
        register_adder(services, topology.folder)
        store = ApiKeyStore(services.registry)
        made = {
            "load": store.create("load", rate="1000000/minute")[1],
            "leaver": store.create("leaver")[1],
            "tight": store.create("tight", rate=f"{RATE_LIMIT}/hour")[1],
            "batch": store.create("batch", scopes=("predict",))[1],
        }
    finally:
        services.close()
    topology.start()
    return made


@pytest.fixture(scope="module")
def load(topology: Any, keys: dict[str, str]) -> Iterator[Load]:
    running = Load(topology.url, keys["load"])
    threads = [threading.Thread(target=running.run, daemon=True) for _ in range(LOAD_CLIENTS)]
    for thread in threads:
        thread.start()
    topology_module.wait_for("load flowing", lambda: running.ok > 20)
    yield running
    running.stop()
    for thread in threads:
        thread.join(timeout=120)


def _served_version(url: str, key: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    response = httpx.post(url + ADDER, json=_body(0.5), headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["model_version"])


def test_an_alias_move_reaches_both_replicas(
    topology: Any, keys: dict[str, str], load: Load
) -> None:
    with load.counting() as failures:
        for replica in topology.replicas:
            assert _served_version(replica.url, keys["load"]) == "2"
        topology.servewell("alias", "set", "adder", "production", "1")
        for replica in topology.replicas:
            topology_module.wait_for(
                f"{replica.url} serving version 1",
                lambda r=replica: _served_version(r.url, keys["load"]) == "1",
                timeout_s=30,
            )
    assert failures == []


def test_a_revoked_key_is_refused_by_both(topology: Any, keys: dict[str, str], load: Load) -> None:
    def status(url: str) -> int:
        headers = {"X-API-Key": keys["leaver"]}
        return httpx.post(url + ADDER, json=_body(0.1), headers=headers, timeout=30).status_code

    assert [status(r.url) for r in topology.replicas] == [200, 200]
    topology.servewell("keys", "revoke", "leaver")
    for replica in topology.replicas:
        topology_module.wait_for(
            f"{replica.url} refusing the key", lambda r=replica: status(r.url) == 401, timeout_s=30
        )
    assert status(topology.url) == 401


def test_a_rate_limit_holds_across_both(topology: Any, keys: dict[str, str], load: Load) -> None:
    headers = {"Authorization": f"Bearer {keys['tight']}"}
    statuses = [
        httpx.post(topology.url + ADDER, json=_body(0.2), headers=headers, timeout=30).status_code
        for _ in range(4 * RATE_LIMIT)
    ]
    assert set(statuses) <= {200, 429}
    assert 0 < statuses.count(200) <= RATE_LIMIT
    for replica in topology.replicas:  # both replicas decided some: the limit is shared
        metrics = httpx.get(replica.url + "/metrics", timeout=30).text
        assert 'servewell_rate_limit_decisions_total{caller="tight"' in metrics


def _query(topology: Any, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{topology.prometheus_url}/api/v1/query", params={"query": promql})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"]["result"])


def test_prometheus_scrapes_both_replicas(topology: Any, load: Load) -> None:
    def all_up() -> bool:
        found = {item["metric"]["instance"]: item["value"][1] for item in _query(topology, "up")}
        return found == {r.address: "1" for r in topology.replicas}

    topology_module.wait_for("Prometheus: up == 1 for both replicas", all_up, timeout_s=60)
    rate = 'sum by (instance) (rate(servewell_request_duration_seconds_count{model="adder"}[15s]))'
    topology_module.wait_for(
        "a request rate from both replicas",
        lambda: len([r for r in _query(topology, rate) if float(r["value"][1]) > 0]) == 2,
        timeout_s=60,
    )


def _worker_task_runs(topology: Any) -> int | None:
    """How many job tasks the Celery worker has taken (Celery's own count, over the
    broker); None while it does not answer."""
    settings = Settings(
        home=topology.folder / "cli",
        jobs=JobsSettings(executor="celery", broker_url=topology.broker_url),
    )
    app = celery_app(settings)
    try:
        stats = app.control.inspect(timeout=5).stats()
    finally:
        app.close()
    if not stats:
        return None
    return sum(int(worker.get("total", {}).get(TASK, 0)) for worker in stats.values())


def test_a_batch_job_through_nginx_runs_on_the_worker_and_either_replica_serves_it(
    topology: Any, keys: dict[str, str], load: Load
) -> None:
    headers = {"Authorization": f"Bearer {keys['batch']}"}
    taken_before = _worker_task_runs(topology)
    assert taken_before is not None, "the worker does not answer over the broker"
    body = "id,x,y\n" + "".join(f"r{i},{i},1\n" for i in range(JOB_ROWS))
    answer = httpx.post(
        f"{topology.url}/v1/models/adder/jobs",
        files={"file": ("rows.csv", body)},
        data={"id_column": "id"},
        headers=headers,
        timeout=60,
    )
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    finished = wait_for_job(topology.url, job_id, headers=headers, timeout_s=180)
    assert finished["state"] == "succeeded", finished
    assert finished["rows_done"] == JOB_ROWS
    # Celery's count rises only if the worker took the job's task; a replica running
    # it in its own threads (jobs.executor: local) sends none.
    taken_after = _worker_task_runs(topology)
    assert taken_after is not None
    assert taken_after > taken_before
    results = []
    for replica in topology.replicas:
        fetched = httpx.get(f"{replica.url}/v1/jobs/{job_id}/results", headers=headers, timeout=60)
        assert fetched.status_code == 200, (replica.url, fetched.text)
        results.append(fetched.text)
    assert len(results) == 2
    assert results[0] == results[1]
    rows = list(csv.DictReader(io.StringIO(results[0])))
    assert sorted(row["id"] for row in rows) == sorted(f"r{i}" for i in range(JOB_ROWS))
    assert all(float(row["prediction"]) == float(row["id"][1:]) + 1 for row in rows)


def test_a_rolling_restart_loses_no_request(topology: Any, load: Load) -> None:
    with load.counting() as failures:
        for old in list(topology.replicas):
            topology.replace(old)
    assert failures == [], f"{len(failures)} requests failed beyond nginx's retries"


def test_a_killed_replica_costs_at_most_the_requests_in_flight(topology: Any, load: Load) -> None:
    with load.counting() as failures:
        topology.kill(topology.replicas[0])
    assert len(failures) <= LOAD_CLIENTS, failures
    with load.counting() as after:  # nginx has stopped sending to it (max_fails)
        pass
    assert after == []
