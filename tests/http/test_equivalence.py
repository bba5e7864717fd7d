"""The same requests get the same answers however the app is served: in process (httpx's
ASGI transport), under stock uvicorn, and under uvicorn with servewell's protocol (which
answers cache hits, and the guard's refusals of them, before the ASGI app), with the fast
lane on and off. Each system's answers are recorded as a transcript (``transcripts``)
and the transcripts must be equal, status, headers and bodies byte for byte, and so must
the counters in ``/metrics`` after each script. Only the wire is looked at."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
import orjson
import pytest

from bad_requests import CASES, Case
from servewell.bootstrap import build_services
from servewell.http import create_app
from servewell.http.protocol import MAX_HELD_BYTES, ServewellHttpProtocol
from servewell.registry.keys import ApiKeyStore
from servewell.settings import RateLimitSettings, ServerSettings, Settings
from serving_models import ECHO_VALUES, serve_in_process, serve_in_thread
from transcripts import Client, Step, assert_same, check_expectations, record

#: A rate no bucket refills a token of within a test run: remaining counts are exact.
SLOW = "1000/30days"
#: Two requests, then 429s for half an hour.
TINY = "2/hour"
REST = "/v1/models/iris:predict"
V2 = "/v2/models/iris/infer"


class System(NamedTuple):
    """One way of serving: uvicorn's ``http`` option (None: in process, no uvicorn) and
    ``server.fast_lane``."""

    http: object
    fast_lane: bool


#: The first is the reference the others are compared with.
SYSTEMS = {
    "asgi": System(None, fast_lane=True),
    "uvicorn": System("httptools", fast_lane=True),
    "lane": System(ServewellHttpProtocol, fast_lane=True),
    "lane-off": System(ServewellHttpProtocol, fast_lane=False),
}


@pytest.fixture(scope="module")
def keys(model_home: Path) -> dict[str, str]:
    services = build_services(Settings(home=model_home))
    store = ApiKeyStore(services.registry)
    try:
        made = {
            "app": store.create("equivalence-app")[1],
            "adder-only": store.create("equivalence-adder-only", models=("adder",))[1],
            "tiny": store.create("equivalence-tiny", rate=TINY)[1],
            "revoked": store.create("equivalence-leaver")[1],
        }
        store.revoke("equivalence-leaver")
        return made
    finally:
        services.close()


def _settings(home: Path, fast_lane: bool) -> Settings:
    return Settings(
        home=home,
        server=ServerSettings(
            models=["iris", "iris@2", "adder", "echo"], access_log=False, fast_lane=fast_lane
        ),
        rate_limits=RateLimitSettings(default_rate=SLOW, anonymous_rate=SLOW),
    )


@contextmanager
def _serve(name: str, home: Path) -> Iterator[Client]:
    """One system: a fresh app (its own cache and buckets) and a client for it."""
    system = SYSTEMS[name]
    app = create_app(_settings(home, system.fast_lane))
    if system.http is None:
        with serve_in_process(app) as in_process:
            yield in_process
        return
    with (
        serve_in_thread(app, http=system.http, timeout_keep_alive=60) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def systems(model_home: Path, keys: dict[str, str]) -> Iterator[dict[str, Client]]:
    """Every system, serving for the whole module: each test sends its script to all of
    them, so they all see the same requests in the same order, whichever tests run."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(_serve(name, model_home)) for name in SYSTEMS}


def _same_everywhere(systems: dict[str, Client], steps: list[Step]) -> None:
    transcripts = {
        name: record(client, steps, stamped=SYSTEMS[name].http is not None)
        for name, client in systems.items()
    }
    assert_same(transcripts)
    check_expectations(steps, next(iter(transcripts.values())))


def _bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


# --- the bad-input matrix ----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_bad_request_is_refused_alike(
    systems: dict[str, Client], keys: dict[str, str], case: Case
) -> None:
    """Twice: a refusal is never cached, and the second answer is the first one."""
    headers = _bearer(keys["app"], **case.headers)
    steps = [
        Step(f"{label}", case.path, json=case.json, content=case.content, headers=headers,
             status=case.status)
        for label in ("first", "again")
    ]  # fmt: skip
    _same_everywhere(systems, steps)


# --- 401, 403, 429, on a miss and on a cached answer ------------------------------------------


def _rest(x: float) -> dict[str, Any]:
    return {"instances": [[x, 3.0, 1.4, 0.2]]}


def _v2(x: float, **request: Any) -> dict[str, Any]:
    tensor = {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [x, 3.0, 1.4, 0.2]}
    return {"inputs": [tensor], **request}


def _refusals(keys: dict[str, str]) -> dict[str, tuple[dict[str, str], int]]:
    """Ways to be refused before any model runs: the headers sent, the status due."""
    return {
        "no key": ({}, 401),
        "unknown key": (_bearer("sw_nope_nope"), 401),
        "unknown X-API-Key": ({"X-API-Key": "sw_nope_nope"}, 401),
        "revoked key": (_bearer(keys["revoked"]), 401),
        "Authorization without a scheme": ({"Authorization": keys["app"]}, 401),
        "Basic authorization": ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        "Bearer and nothing": ({"Authorization": "Bearer"}, 401),
        "Basic beside a good X-API-Key": (
            {"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": keys["app"]}, 401,
        ),
        "key not allowed on the model": (_bearer(keys["adder-only"]), 403),
    }  # fmt: skip


def test_refusals_alike_on_a_miss_and_on_a_cached_answer(
    systems: dict[str, Client], keys: dict[str, str]
) -> None:
    """On a cached answer the fast lane refuses; on a miss the app does."""
    app = _bearer(keys["app"])
    cached = {"rest": (REST, _rest(6.1)), "v2": (V2, _v2(6.1))}
    uncached = {"rest": (REST, _rest(6.2)), "v2": (V2, _v2(6.2))}
    steps = [
        Step(f"{protocol} {answer}", path, json=body, headers=app, status=200, cache=answer)
        for answer in ("miss", "hit")
        for protocol, (path, body) in cached.items()
    ]
    for refusal, (headers, status) in _refusals(keys).items():
        for kind, requests in (("cached", cached), ("uncached", uncached)):
            steps.extend(
                Step(f"{refusal}, {protocol} {kind}", path, json=body, headers=headers,
                     status=status)
                for protocol, (path, body) in requests.items()
            )  # fmt: skip
    steps += [
        Step("X-API-Key, cached", REST, json=_rest(6.1), headers={"X-API-Key": keys["app"]},
             status=200, cache="hit"),
        Step("lower-case bearer, cached", REST, json=_rest(6.1),
             headers={"Authorization": f"bearer {keys['app']}"}, status=200, cache="hit"),
        # No key lacks 'predict' (admin grants it): a predict key lacks 'admin'.
        Step("key lacking the scope", "/admin/reload", json={}, headers=app, status=403),
        Step("metadata, key not allowed on the model", "/v2/models/iris", method="GET",
             headers=_bearer(keys["adder-only"]), status=403),
        Step("metadata, no key", "/v2/models/iris", method="GET", status=401),
        Step("metadata", "/v2/models/iris", method="GET", headers=app, status=200),
    ]  # fmt: skip
    _same_everywhere(systems, steps)


def test_over_the_rate_alike_on_a_miss_and_on_a_cached_answer(
    systems: dict[str, Client], keys: dict[str, str]
) -> None:
    """``tiny`` has two requests: a hit and a miss; then 429 on the lane (cached) and on
    the app (uncached); another key's budget is untouched."""
    tiny, app = _bearer(keys["tiny"]), _bearer(keys["app"])
    steps = [
        Step("cache it", REST, json=_rest(6.3), headers=app, status=200, cache="miss"),
        Step("a hit", REST, json=_rest(6.3), headers=tiny, status=200, cache="hit"),
        Step("a miss", V2, json=_v2(6.3), headers=tiny, status=200, cache="miss"),
        Step("over, cached", REST, json=_rest(6.3), headers=tiny, status=429),
        Step("over, v2 cached", V2, json=_v2(6.3), headers=tiny, status=429),
        Step("over, uncached", REST, json=_rest(6.4), headers=tiny, status=429),
        Step("over, unknown model", "/v1/models/nope:predict", json=_rest(6.4), headers=tiny,
             status=429),
        Step("over, request id", REST, json=_rest(6.3), headers={**tiny, "X-Request-Id": "r-429"},
             status=429),
        Step("another key", REST, json=_rest(6.3), headers=app, status=200, cache="hit"),
    ]  # fmt: skip
    _same_everywhere(systems, steps)


def test_open_paths_alike(systems: dict[str, Client], keys: dict[str, str]) -> None:
    steps = [
        Step("ready", "/v2/health/ready", method="GET", status=200),
        Step("ready, unknown key", "/v2/health/ready", method="GET",
             headers=_bearer("sw_nope_nope"), status=200),
        Step("live", "/v2/health/live", method="GET", status=200),
        Step("metrics", "/metrics", method="GET", status=200, compare_body=False),
        Step("POST to a probe", "/v2/health/ready", status=405),
        Step("GET on an inference path", V2, method="GET", headers=_bearer(keys["app"])),
    ]  # fmt: skip
    _same_everywhere(systems, steps)


# --- the response cache ---------------------------------------------------------------------


def _binary_v2(x: float, app: dict[str, str], **parameters: Any) -> Step:
    """A V2 request with its tensor in binary; ``parameters`` of the request."""
    raw = np.array([[x, 3.0, 1.4, 0.2]], dtype=np.float32).tobytes()
    tensor = {"name": "input", "datatype": "FP32", "shape": [1, 4],
              "parameters": {"binary_data_size": len(raw)}}  # fmt: skip
    header = orjson.dumps({"inputs": [tensor], "parameters": parameters})
    headers = {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
        **app,
    }
    return Step("binary", V2, content=header + raw, headers=headers)


def _twice(step: Step, **changes: Any) -> list[Step]:
    """``step`` as a miss, then as a hit of what the miss stored."""
    first = dataclasses.replace(step, status=200, cache="miss", **changes)
    return [first, dataclasses.replace(first, label=first.label + ", again", cache="hit")]


def _cache_steps(app: dict[str, str]) -> list[Step]:
    big = {"instances": [[7.0 + row / 1000, 3.0, 1.4, 0.2] for row in range(4000)]}
    assert len(orjson.dumps(big)) > MAX_HELD_BYTES
    echo = [
        {"name": f"in_{datatype}", "datatype": datatype, "shape": [1, 2], "data": values}
        for datatype, values in ECHO_VALUES.items()
    ]
    spaced = orjson.dumps(_rest(7.1)).replace(b",", b", ")
    rest = Step("rest", REST, json=_rest(7.1), headers=app)
    return [
        *_twice(rest, headers={**app, "X-Request-Id": "eq-1"}),
        dataclasses.replace(rest, label="no request id", status=200, cache="hit"),
        dataclasses.replace(rest, label="an unusable request id", status=200, cache="hit",
                            headers={**app, "X-Request-Id": "x" * 200}),
        *_twice(rest, label="another body", json=_rest(7.2)),
        dataclasses.replace(rest, label="no-cache", status=200, cache="miss",
                            headers={**app, "Cache-Control": "no-cache"}),
        dataclasses.replace(rest, label="max-age=0", status=200, cache="hit",
                            headers={**app, "Cache-Control": "max-age=0"}),
        dataclasses.replace(rest, label="pragma", status=200, cache="hit",
                            headers={**app, "Pragma": "no-cache"}),
        dataclasses.replace(rest, label="the default's version pinned", status=200, cache="hit",
                            path="/v1/models/iris/versions/1:predict"),
        *_twice(rest, label="version 2", path="/v1/models/iris/versions/2:predict"),
        *_twice(rest, label="charset", headers={**app, "Content-Type": "application/json; "
                                                "charset=utf-8"}),
        *_twice(rest, label="no content type", json=None, content=orjson.dumps(_rest(7.1))),
        *_twice(rest, label="other spacing", json=None, content=spaced,
                headers={**app, "Content-Type": "application/json"}),
        *_twice(rest, label="over what the lane holds", json=big),
        *_twice(rest, label="v2", path=V2, json=_v2(7.1, id="eq-v2")),
        *_twice(rest, label="v2 version 2", path="/v2/models/iris/versions/2/infer",
                json=_v2(7.1)),
        *_twice(rest, label="v2 binary output", path=V2,
                json=_v2(7.1, outputs=[{"name": "label", "parameters": {"binary_data": True}}])),
        *_twice(_binary_v2(7.1, app), label="binary in, json out"),
        *_twice(_binary_v2(7.1, app, binary_data_output=True), label="binary in and out"),
        *_twice(rest, label="every datatype", path="/v2/models/echo/infer",
                json={"inputs": echo}),
        *_twice(rest, label="adder", path="/v1/models/adder:predict",
                json={"inputs": {"x": [7.1], "y": [1.0]}}),
    ]  # fmt: skip


def test_the_cache_answers_alike(systems: dict[str, Client], keys: dict[str, str]) -> None:
    _same_everywhere(systems, _cache_steps(_bearer(keys["app"])))
