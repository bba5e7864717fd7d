"""The same requests get the same answers however the app is served: in process (httpx's
ASGI transport), under stock uvicorn, and under uvicorn with servewell's protocol (which
answers cache hits, and the guard's refusals of them, before the ASGI app), with the fast
lane on and off (``serving_ways``). Each system's answers are recorded as a transcript
(``transcripts``) and the transcripts must be equal, status, headers and bodies byte for
byte, and so must the counters in ``/metrics`` after each script. Only the wire is
looked at. Here with API keys on; ``test_equivalence_open`` serves without them."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from bad_requests import CASES, Case
from servewell.bootstrap import build_services
from servewell.http.protocol import MAX_HELD_BYTES
from servewell.registry.keys import ApiKeyStore
from servewell.settings import (
    AuthSettings,
    CacheSettings,
    ModelCacheSettings,
    OutputFilterSettings,
    RateLimitSettings,
    ServerSettings,
    Settings,
)
from serving_models import ECHO_VALUES
from serving_ways import Systems, same_everywhere, serve_everywhere
from transcripts import Step, counter

#: A rate no bucket refills a token of within a test run: remaining counts are exact.
SLOW = "1000/30days"
#: Two requests, then 429s for half an hour.
TINY = "2/hour"
MODELS = ["iris", "iris@2", "adder", "echo"]
#: The open configuration's cache budget: some of the large answers fit, not all.
CACHE_BYTES = 1_000_000
REST = "/v1/models/iris:predict"
V2 = "/v2/models/iris/infer"
ADDER_REST = "/v1/models/adder:predict"
ADDER_V2 = "/v2/models/adder/infer"
#: A WebSocket handshake's headers, as a client sends them.
WEBSOCKET = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
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


def _with_keys(home: Path, fast_lane: bool) -> Settings:
    """API keys on; every bucket SLOW but ``tiny`` keys' and each key's on ``adder``."""
    return Settings(
        home=home,
        server=ServerSettings(models=MODELS, access_log=False, fast_lane=fast_lane),
        rate_limits=RateLimitSettings(
            default_rate=SLOW, anonymous_rate=SLOW, model_rates={"adder": "3/hour"}
        ),
        # The scripts send many bad keys from one address: none is locked out here.
        auth=AuthSettings(failed_attempts_rate=SLOW),
    )


def _open(home: Path, fast_lane: bool) -> Settings:
    """No keys (callers limited by address); no cache for ``adder``; what ``echo`` says
    redacted; a cache budget a few large answers fill."""
    return Settings(
        home=home,
        auth=AuthSettings(enabled=False),
        server=ServerSettings(models=MODELS, access_log=False, fast_lane=fast_lane),
        rate_limits=RateLimitSettings(anonymous_rate=SLOW),
        cache=CacheSettings(
            max_bytes=CACHE_BYTES, models={"adder": ModelCacheSettings(enabled=False)}
        ),
        output_filters={"echo": OutputFilterSettings(policy="redact")},
    )


CONFIGURATIONS = {"keys": _with_keys, "open": _open}
WITH_KEYS = pytest.mark.parametrize("systems", ["keys"], indirect=True)
OPEN = pytest.mark.parametrize("systems", ["open"], indirect=True)
EITHER = pytest.mark.parametrize("systems", list(CONFIGURATIONS), indirect=True)


@pytest.fixture(scope="module")
def systems(
    request: pytest.FixtureRequest, model_home: Path, keys: dict[str, str]
) -> Iterator[Systems]:
    """Every system in one configuration, serving while the module's tests of that
    configuration run: each test sends its script to all of them, so they all see the
    same requests in the same order, whichever tests run."""
    settings = functools.partial(CONFIGURATIONS[request.param], model_home)
    with serve_everywhere(settings) as systems:
        yield systems


def _bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


# --- the bad-input matrix ----------------------------------------------------------------------


@WITH_KEYS
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_bad_request_is_refused_alike(systems: Systems, keys: dict[str, str], case: Case) -> None:
    """Twice: a refusal is never cached, and the second answer is the first one."""
    headers = _bearer(keys["app"], **case.headers)
    steps = [
        Step(label, case.path, json=case.json, content=case.content, headers=headers,
             status=case.status)
        for label in ("first", "again")
    ]  # fmt: skip
    same_everywhere(systems, steps)


# --- 401, 403, 429, on a miss and on a cached answer ------------------------------------------


def _rest(x: float) -> dict[str, Any]:
    return {"instances": [[x, 3.0, 1.4, 0.2]]}


def _v2(x: float, **request: Any) -> dict[str, Any]:
    tensor = {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [x, 3.0, 1.4, 0.2]}
    return {"inputs": [tensor], **request}


def _sum(x: float) -> dict[str, Any]:
    return {"inputs": {"x": [x], "y": [1.0]}}


def _sum_v2(x: float) -> dict[str, Any]:
    tensors = [("x", x), ("y", 1.0)]
    return {
        "inputs": [
            {"name": name, "datatype": "FP32", "shape": [1, 1], "data": [value]}
            for name, value in tensors
        ]
    }


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


@WITH_KEYS
def test_refusals_alike_on_a_miss_and_on_a_cached_answer(
    systems: Systems, keys: dict[str, str]
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
    same_everywhere(systems, steps)


@WITH_KEYS
def test_over_the_rate_alike_on_a_miss_and_on_a_cached_answer(
    systems: Systems, keys: dict[str, str]
) -> None:
    """``tiny`` has two requests: a hit and a miss; then 429 on the lane (cached) and on
    the app (uncached); another key's budget is untouched. Then a key's own budget on
    ``adder`` (its first bucket has plenty)."""
    tiny, app, adder = _bearer(keys["tiny"]), _bearer(keys["app"]), _bearer(keys["adder-only"])
    sums = {"rest": (ADDER_REST, _sum(6.5)), "v2": (ADDER_V2, _sum_v2(6.5))}
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
        Step("adder, a miss", ADDER_REST, json=_sum(6.5), headers=adder, status=200,
             cache="miss"),
        Step("adder, a hit", ADDER_REST, json=_sum(6.5), headers=adder, status=200, cache="hit"),
        Step("adder, v2 miss", ADDER_V2, json=_sum_v2(6.5), headers=adder, status=200,
             cache="miss"),
        *(Step(f"adder over, {protocol} cached", path, json=body, headers=adder, status=429)
          for protocol, (path, body) in sums.items()),
        Step("adder over, uncached", ADDER_REST, json=_sum(6.6), headers=adder, status=429),
    ]  # fmt: skip
    same_everywhere(systems, steps)


@WITH_KEYS
def test_open_paths_alike(systems: Systems, keys: dict[str, str]) -> None:
    steps = [
        Step("ready", "/v2/health/ready", method="GET", status=200),
        Step("ready, unknown key", "/v2/health/ready", method="GET",
             headers=_bearer("sw_nope_nope"), status=200),
        Step("live", "/v2/health/live", method="GET", status=200),
        Step("metrics", "/metrics", method="GET", status=200, compare_body=False),
        Step("POST to a probe", "/v2/health/ready", status=405),
        Step("GET on an inference path", V2, method="GET", headers=_bearer(keys["app"]),
             status=405),
        Step("GET on a REST inference path", REST, method="GET", headers=_bearer(keys["app"]),
             status=405),
        Step("HEAD on an inference path", REST, method="HEAD", headers=_bearer(keys["app"]),
             status=405),
        Step("PUT on a pinned inference path", "/v2/models/iris/versions/2/infer",
             method="PUT", headers=_bearer(keys["app"]), status=405),
        Step("a method, no key", REST, method="GET", status=401),
        Step("a WebSocket handshake to a probe", "/v2/health/live", method="GET",
             headers=WEBSOCKET, status=400),
        Step("a WebSocket handshake, no key", "/v1/models/iris", method="GET",
             headers=WEBSOCKET, status=401),
        Step("a WebSocket handshake", "/v1/models/iris", method="GET",
             headers={**WEBSOCKET, **_bearer(keys["app"])}, status=400),
    ]  # fmt: skip
    same_everywhere(systems, steps)


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


def _big(x: float) -> dict[str, Any]:
    """A request of 4000 rows (over what the fast lane holds), its answer over 100 kB."""
    return {"instances": [[x + row / 1000, 3.0, 1.4, 0.2] for row in range(4000)]}


def _cache_steps(app: dict[str, str]) -> list[Step]:
    assert len(orjson.dumps(_big(7.0))) > MAX_HELD_BYTES
    echo = [
        {"name": f"in_{datatype}", "datatype": datatype, "shape": [1, 2], "data": values}
        for datatype, values in ECHO_VALUES.items()
    ]
    spaced = orjson.dumps(_rest(7.1)).replace(b",", b", ")
    rest = Step("rest", REST, json=_rest(7.1), headers=app)
    return [
        *_twice(rest, label="a request id", headers={**app, "X-Request-Id": "eq-1"}),
        dataclasses.replace(rest, label="no request id", status=200, cache="hit"),
        dataclasses.replace(rest, label="an unusable request id", status=200, cache="hit",
                            headers={**app, "X-Request-Id": "x" * 200}),
        *_twice(rest, label="another body", json=_rest(7.2)),
        dataclasses.replace(rest, label="no-cache", status=200, cache="miss",
                            headers={**app, "Cache-Control": "no-cache"}),
        dataclasses.replace(rest, label="No-Cache", status=200, cache="miss",
                            headers={**app, "Cache-Control": "No-Cache"}),
        dataclasses.replace(rest, label="max-age=0", status=200, cache="hit",
                            headers={**app, "Cache-Control": "max-age=0"}),
        dataclasses.replace(rest, label="pragma", status=200, cache="hit",
                            headers={**app, "Pragma": "no-cache"}),
        dataclasses.replace(rest, label="the default's version pinned", status=200, cache="hit",
                            path="/v1/models/iris/versions/1:predict"),
        dataclasses.replace(rest, label="a query string", status=200, cache="hit",
                            path=REST + "?explain=1"),
        dataclasses.replace(rest, label="a percent-encoded path", status=200, cache="hit",
                            path="/v1/models/ir%69s:predict"),
        *_twice(rest, label="version 2", path="/v1/models/iris/versions/2:predict"),
        *_twice(rest, label="charset", headers={**app, "Content-Type": "application/json; "
                                                "charset=utf-8"}),
        *_twice(rest, label="no content type", json=None, content=orjson.dumps(_rest(7.1))),
        *_twice(rest, label="the same JSON spelt otherwise", json=None, content=spaced,
                headers={**app, "Content-Type": "application/json"}),
        *_twice(rest, label="over what the lane holds", json=_big(7.0)),
        *_twice(rest, label="v2", path=V2, json=_v2(7.1, id="eq-v2")),
        *_twice(rest, label="v2 version 2", path="/v2/models/iris/versions/2/infer",
                json=_v2(7.1)),
        *_twice(rest, label="v2 binary output", path=V2,
                json=_v2(7.1, outputs=[{"name": "label", "parameters": {"binary_data": True}}])),
        *_twice(_binary_v2(7.1, app), label="binary in, json out"),
        *_twice(_binary_v2(7.1, app, binary_data_output=True), label="binary in and out"),
        *_twice(rest, label="every datatype", path="/v2/models/echo/infer",
                json={"inputs": echo}),
    ]  # fmt: skip


@EITHER
def test_the_cache_answers_alike(systems: Systems, keys: dict[str, str]) -> None:
    same_everywhere(systems, _cache_steps(_bearer(keys["app"])))


# --- without keys -------------------------------------------------------------------------------


@OPEN
def test_evictions_alike(systems: Systems) -> None:
    """Large answers (the app's) fill the budget and push the oldest entries out; a small
    one kept in use by hits (the lane's) stays, one left alone goes."""
    steps = [
        Step("small, kept in use", REST, json=_rest(8.1), status=200, cache="miss"),
        Step("small, left alone", REST, json=_rest(8.2), status=200, cache="miss"),
    ]
    for n in range(10):
        steps += [
            Step(f"large {n}", REST, json=_big(n), status=200, cache="miss"),
            Step(f"small, used after large {n}", REST, json=_rest(8.1), status=200, cache="hit"),
        ]
    steps += [
        Step("small, left alone, again", REST, json=_rest(8.2), status=200, cache="miss"),
        Step("large 0 again", REST, json=_big(0), status=200, cache="miss"),
        Step("large 9 again", REST, json=_big(9), status=200, cache="hit"),
    ]
    counters = same_everywhere(systems, steps)[-1]
    assert counter(counters, "servewell_cache_evictions_total{}") > 0


@OPEN
def test_redacted_and_uncached_answers_alike(systems: Systems) -> None:
    """What a hit answers is the redacted answer; a model without a cache never hits."""
    columns = {f"in_{datatype}": [values] for datatype, values in ECHO_VALUES.items()}
    texts = {**columns, "in_BYTES": [["write to bob@example.com", "call 555-123-4567"]]}
    redacted = Step("redacted", "/v1/models/echo:predict", json={"inputs": texts})
    steps = [
        *_twice(redacted),
        *(Step(f"no cache, {n}", ADDER_REST, json=_sum(8.3), status=200, cache="absent")
          for n in range(2)),
        *(Step(f"no cache, v2 {n}", ADDER_V2, json=_sum_v2(8.3), status=200, cache="absent")
          for n in range(2)),
    ]  # fmt: skip
    transcript = same_everywhere(systems, steps)
    assert b"write to [REDACTED:email]" in transcript[1].body
    findings = 'servewell_output_filter_findings_total{kind="email",model="echo",policy="redact"}'
    assert counter(transcript[-1], findings) > 0
