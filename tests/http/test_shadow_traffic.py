"""Shadow traffic on real ``servewell serve`` processes: copies of a model's requests sent
to its shadow version after the primary answered, compared live; the callers' answers
are the primary's whatever the shadow does (differs, is slow, fails, hangs), paths
naming a version are never copied, a full queue drops and counts, and a policy change
reaches a running server. No timing assertions: waits are polls with generous bounds.

Model 'fraud' (signature column.json, y from x): 1 doubles (production), 2 triples, 3
always fails (but on x = 0), 4 sleeps 200 ms and answers y = x, 5 hangs on x < 0.
Model 'scorer' (scores.json): 1 Linear, 2 Squared (``python_models/scores.py``).
Model 'col' (column.json): 1 doubles (production), 2 ends its process on x < 0 (crash.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from servewell.bootstrap import build_services
from servewell.core.traffic import Arm, Shadow
from servewell.http import create_app
from servewell.registry.traffic import TrafficStore
from servewell.settings import (
    AuthSettings,
    CacheSettings,
    RateLimitSettings,
    ServerSettings,
    Settings,
)
from serving_models import register_python, serve_in_thread, serve_process

CLIENT_TIMEOUT_S = 60.0
WAIT_S = 60.0  # generous: the machine is shared; the servers poll every 0.5 s
#: Without the response cache: its hits are the model's earlier answers, never copied.
ENV = {"SERVEWELL_RATE_LIMITS__ENABLED": "false", "SERVEWELL_CACHE__ENABLED": "false"}
#: x = 0 is the only input on which fraud's versions agree.
XS = [0.0, 1.0, -2.0, 0.0, 5.0, 0.0, 7.5, 3.0, 0.0, 12.0]
ZEROS = XS.count(0.0)

Served = AbstractContextManager[tuple[str, "subprocess.Popen[str]"]]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("shadow") / "home"
    slow = home.parent / "slow_200ms"
    slow.mkdir()
    (slow / "config.json").write_text('{"sleep_ms": 200}', encoding="utf-8")
    services = build_services(Settings(home=home))
    try:
        register_python(services, "fraud", "two_classes", model_class="Doubler")
        register_python(services, "fraud", "two_classes", model_class="Tripler")
        register_python(services, "fraud", "always_fails")
        register_python(services, "fraud", "slow", artifacts=slow)
        register_python(services, "fraud", "hang")
        services.registry.set_alias("fraud", "production", 1)
        for model_class in ("Linear", "Squared"):
            register_python(
                services, "scorer", "scores", signature="scores.json", model_class=model_class
            )
        services.registry.set_alias("scorer", "production", 1)
        register_python(services, "col", "two_classes", model_class="Doubler")
        register_python(services, "col", "crash")
        services.registry.set_alias("col", "production", 1)
    finally:
        services.close()
    return home


def _policy(home: Path, model: str, shadow: Shadow | None, *arms: Arm) -> None:
    services = build_services(Settings(home=home))
    try:
        store = TrafficStore(services.registry)
        store.clear(model)
        if arms:
            store.set_split(model, list(arms))
        store.set_shadow(model, shadow)
    finally:
        services.close()


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


def _serve(home: Path, *models: str, log: list[str] | None = None, **env: str) -> Served:
    return serve_process(
        home,
        "--no-auth",
        "--models",
        ",".join(models),
        env={**ENV, **env},
        log=log,
        drain=True,
    )


def _rest(client: httpx.Client, url: str, x: float, path: str = "fraud") -> httpx.Response:
    answer = client.post(
        f"{url}/v1/models/{path}:predict", json={"instances": [{"x": x}]}, timeout=CLIENT_TIMEOUT_S
    )
    assert answer.status_code == 200, answer.text
    return answer


def _v2(client: httpx.Client, url: str, x: float, path: str = "fraud") -> httpx.Response:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [x]}]}
    answer = client.post(f"{url}/v2/models/{path}/infer", json=body, timeout=CLIENT_TIMEOUT_S)
    assert answer.status_code == 200, answer.text
    return answer


def _samples(url: str, model: str) -> Iterator[tuple[str, dict[str, str], float]]:
    text = httpx.get(f"{url}/metrics", timeout=CLIENT_TIMEOUT_S).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("servewell_shadow_") and sample.labels["model"] == model:
                yield sample.name, sample.labels, sample.value


def _total(url: str, name: str, model: str = "fraud", **labels: str) -> float:
    return sum(
        value
        for found, has, value in _samples(url, model)
        if found == name and all(has.get(key) == wanted for key, wanted in labels.items())
    )


def _comparisons(url: str, agree: str, model: str = "fraud") -> float:
    return _total(url, "servewell_shadow_comparisons_total", model, agree=agree)


def _poll(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


def _answers(client: httpx.Client, url: str, path: str) -> list[object]:
    """The answers to XS, every other one over V2, as the caller sees them."""
    return [
        (_v2 if i % 2 else _rest)(client, url, x, path).json()[
            "outputs" if i % 2 else "predictions"
        ]
        for i, x in enumerate(XS)
    ]


def test_callers_get_the_primarys_answers_and_every_copy_is_compared(home: Path) -> None:
    _policy(home, "fraud", Shadow("2", 100))
    with _serve(home, "fraud") as (url, _), httpx.Client() as client:
        pinned = _answers(client, url, "fraud/versions/1")  # a pinned version: never copied
        shadowed = _answers(client, url, "fraud")
        assert shadowed == pinned
        assert shadowed[::2] == [[2 * x] for x in XS[::2]]  # REST: the primary doubles
        _poll(lambda: _comparisons(url, "true") + _comparisons(url, "false") >= len(XS), "all")
        labels = {"primary": "1", "shadow": "2"}
        assert _comparisons(url, "true") == ZEROS
        assert _comparisons(url, "false") == len(XS) - ZEROS
        assert _total(url, "servewell_shadow_comparisons_total", **labels) == len(XS)
        assert _total(url, "servewell_shadow_duration_seconds_count", shadow="2") == len(XS)
        assert _total(url, "servewell_shadow_errors_total") == 0
        assert _total(url, "servewell_shadow_dropped_total") == 0


def test_a_classifier_shadow_compares_labels_and_probabilities(home: Path) -> None:
    _policy(home, "scorer", Shadow("2", 100))
    xs = [0.0, 6.0, 8.0, 10.0] * 5  # the same label but at 6; probabilities 0, .24, .16, 0
    with _serve(home, "scorer") as (url, _), httpx.Client() as client:
        for x in xs:
            _v2(client, url, x, "scorer")
        _poll(lambda: _comparisons(url, "true", "scorer") >= 15, "15 agreeing rows")
        assert _comparisons(url, "false", "scorer") == 5

        def below(bound: str) -> float:
            name = "servewell_shadow_probability_diff_bucket"
            return _total(url, name, "scorer", le=bound, primary="1", shadow="2")

        assert (below("1e-06"), below("0.1"), below("0.2"), below("0.5")) == (10, 10, 15, 20)
        shown = json.loads(_cli(home, "traffic", "show", "scorer", "--server", url, "--json"))
        table = _cli(home, "traffic", "show", "scorer", "--server", url)
    measured = shown["shadow"]["measured"]
    assert (measured["rows_compared"], measured["rows_agreeing"]) == (20, 15)
    assert measured["agreement"] == 0.75
    assert (measured["copies"], measured["errors"], measured["dropped"]) == (20, 0, 0)
    assert 0.2 < measured["probability_diff_p99"] <= 0.5
    assert 0 < measured["p50_s"] <= measured["p99_s"]
    assert "20 rows compared, 75.00 % agree" in table


def test_a_slow_shadow_leaves_the_answers_alone(home: Path) -> None:
    _policy(home, "fraud", Shadow("4", 100))  # sleeps 200 ms a call
    with _serve(home, "fraud") as (url, _), httpx.Client() as client:
        assert _answers(client, url, "fraud") == _answers(client, url, "fraud/versions/1")
        _poll(lambda: _comparisons(url, "false") >= len(XS) - ZEROS, "the slow copies")
        assert _comparisons(url, "true") == ZEROS  # y = x agrees with 2x at 0 only
        assert _total(url, "servewell_shadow_errors_total") == 0


def test_a_failing_shadow_is_counted_and_never_reaches_the_caller(home: Path) -> None:
    _policy(home, "fraud", Shadow("3", 100))  # fails on every x but 0
    log: list[str] = []
    breaker_off = {"SERVEWELL_MODELS__FRAUD__BREAKER__ENABLED": "false"}  # errors, not 503s
    with _serve(home, "fraud", log=log, **breaker_off) as (url, _), httpx.Client() as client:
        for x in XS:
            assert _rest(client, url, x).json()["predictions"] == [2 * x]
        _poll(lambda: _total(url, "servewell_shadow_errors_total") >= len(XS) - ZEROS, "errors")
        assert _total(url, "servewell_shadow_errors_total", shadow="3") == len(XS) - ZEROS
        _poll(lambda: _comparisons(url, "true") >= ZEROS, "the copies of x = 0")
    warnings = [line for line in log[0].splitlines() if "failed on a copy of a request" in line]
    assert len(warnings) == 1, warnings  # one a minute, the rest at debug


def test_a_full_shadow_queue_drops_and_counts(home: Path) -> None:
    _policy(home, "fraud", Shadow("5", 100))  # hangs on x < 0
    requests = 10
    with (
        _serve(home, "fraud", SERVEWELL_SERVER__SHADOW_QUEUE_SIZE="1") as (url, _),
        httpx.Client() as client,
    ):
        for _ in range(requests):
            assert _rest(client, url, -1.0).json()["predictions"] == [-2.0]
        # One copy hangs in the shadow, one waits in its queue, the rest are dropped
        # (one more if the first had not left the queue when the second came).
        assert _total(url, "servewell_shadow_dropped_total") in (requests - 2, requests - 1)
        assert _comparisons(url, "true") + _comparisons(url, "false") == 0


def test_copies_left_when_a_shadow_stops_are_counted_as_dropped(home: Path) -> None:
    """The policy's shadow goes while the first copy hangs in it and the others wait in
    its queue: every one of them is counted as dropped, ``stopped``."""
    _policy(home, "fraud", Shadow("5", 100))  # hangs on x < 0
    requests = 10
    with _serve(home, "fraud") as (url, _), httpx.Client() as client:
        for _ in range(requests):
            _rest(client, url, -1.0)
        _policy(home, "fraud", None)
        stopped = lambda: _total(url, "servewell_shadow_dropped_total", reason="stopped")  # noqa: E731
        _poll(lambda: stopped() >= requests, "every copy left is counted")
        assert stopped() == requests
        assert _total(url, "servewell_shadow_dropped_total", reason="full") == 0
        assert _total(url, "servewell_shadow_duration_seconds_count") == 0  # none finished


def test_copies_left_at_shutdown_are_counted_as_dropped(home: Path) -> None:
    """The server shuts down while the first copy hangs in the shadow and the others wait
    in its queue: what it counted last says they were dropped."""
    _policy(home, "fraud", Shadow("5", 100))
    metrics = CollectorRegistry()
    settings = Settings(
        home=home,
        auth=AuthSettings(enabled=False),
        cache=CacheSettings(enabled=False),
        rate_limits=RateLimitSettings(enabled=False),
        server=ServerSettings(models=["fraud"], drain_timeout_s=1),
    )
    requests = 10
    with (
        serve_in_thread(create_app(settings, registry=metrics)) as server,
        httpx.Client() as client,
    ):
        for _ in range(requests):
            _rest(client, server.url, -1.0)
    labels = {"model": "fraud", "reason": "stopped"}
    assert metrics.get_sample_value("servewell_shadow_dropped_total", labels) == requests


def test_a_shadow_whose_process_crashes_counts_every_copy(home: Path) -> None:
    """Under ``isolation: process`` each copy of a negative x ends the shadow's child:
    every copy is still accounted for, as an error or a drop, and none is compared."""
    _cli(home, "traffic", "shadow", "col", "2", "--percent", "100")
    requests = 10
    isolated = {
        "SERVEWELL_MODELS__COL__ISOLATION": "process",  # both versions, each its own child
        "SERVEWELL_MODELS__COL__BREAKER__ENABLED": "false",  # the crash, not an open breaker
    }
    log: list[str] = []
    with _serve(home, "col", log=log, **isolated) as (url, _), httpx.Client() as client:
        for _ in range(requests):
            assert _rest(client, url, -1.0, "col").json()["predictions"] == [-2.0]

        def accounted() -> float:
            errors = _total(url, "servewell_shadow_errors_total", "col", shadow="2")
            return errors + _total(url, "servewell_shadow_dropped_total", "col")

        _poll(lambda: accounted() >= requests, "every copy errored or dropped")
        assert accounted() == requests
        assert _total(url, "servewell_shadow_errors_total", "col", shadow="2") >= 1
        assert _comparisons(url, "true", "col") + _comparisons(url, "false", "col") == 0
    assert "version 2 crashed while answering" in log[0]  # the child died, not a refusal


def _marked(client: httpx.Client, url: str, home: Path, arm: str) -> None:
    """Split fraud 100 % to ``arm`` and wait until the server routes by it: it has then
    applied every policy change made before. The probe is refused (400), so never copied."""
    _cli(home, "traffic", "split", "fraud", f"{arm}=100")

    def routed() -> bool:
        probe = client.post(f"{url}/v1/models/fraud:predict", json={"rows": []})
        return probe.status_code == 400 and probe.headers.get("x-servewell-arm") == arm

    _poll(routed, f"routed to {arm}")


def test_percent_zero_and_off_stop_the_copies_on_a_running_server(home: Path) -> None:
    """Copies of x = 1 disagree, of x = 0 agree: the x = 0 requests are sent while the
    shadow is at 0 % or off, so any copy of them would count as agreeing. One queue and
    one consumer, in order: once the later x = 1 copies are counted, so are the earlier."""
    _policy(home, "fraud", None, Arm("1", 100))
    with _serve(home, "fraud") as (url, _), httpx.Client() as client:
        _cli(home, "traffic", "shadow", "fraud", "2", "--percent", "100")  # loads version 2
        _marked(client, url, home, "production")
        for _ in range(3):
            _rest(client, url, 1.0)
        _poll(lambda: _comparisons(url, "false") >= 3, "three copies")

        _cli(home, "traffic", "shadow", "fraud", "2", "--percent", "0")
        _marked(client, url, home, "1")
        for _ in range(5):
            _rest(client, url, 0.0)
        _cli(home, "traffic", "shadow", "fraud", "2", "--percent", "100")
        _marked(client, url, home, "production")
        for _ in range(3):
            _rest(client, url, 1.0)
        _poll(lambda: _comparisons(url, "false") >= 6, "three more copies")
        assert _comparisons(url, "true") == 0

        _cli(home, "traffic", "shadow", "fraud", "--off")
        _marked(client, url, home, "1")
        for _ in range(5):
            _rest(client, url, 0.0)
        _cli(home, "traffic", "shadow", "fraud", "2", "--percent", "100")
        _marked(client, url, home, "production")
        for _ in range(3):
            _rest(client, url, 1.0)
        _poll(lambda: _comparisons(url, "false") >= 9, "three copies after --off")
        assert _comparisons(url, "true") == 0
        assert _total(url, "servewell_shadow_dropped_total") == 0
