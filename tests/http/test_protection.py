"""Keys, rate limits, the response cache and output filters, through real servers: the app
in process, uvicorn on loopback ports, `servewell serve` processes, and real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest

from redis_server import PrivateRedis
from servewell.bootstrap import build_services
from servewell.http import create_app
from servewell.registry.keys import ApiKeyStore
from servewell.settings import (
    AuthSettings,
    CacheSettings,
    ModelSettings,
    OutputFilterSettings,
    RateLimitSettings,
    ServerSettings,
    Settings,
)
from serving_models import register_echo, serve_in_process, serve_in_thread, serve_process

ROW = {"instances": [[1.0, 2.0]]}


def _scaler_file(folder: Path, factor: float) -> Path:
    """An ONNX model whose answer says which version ran: ``y = x * factor``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["input", "factor"], ["y"])],
        "scaler",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(np.array([factor], dtype=np.float32), "factor")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"scaler-{factor:g}.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scaler v1 (x2, production) and v2 (x3), echo (text in, text out)."""
    from servewell.registration.register import RegisterOptions, register_file

    folder = tmp_path_factory.mktemp("protection")
    home = folder / "home"
    services = build_services(Settings(home=home))
    try:
        register_file(
            services, _scaler_file(folder, 2), "scaler", options=RegisterOptions(alias="production")
        )
        register_file(services, _scaler_file(folder, 3), "scaler")
        register_echo(services, folder)
    finally:
        services.close()
    return home


@pytest.fixture(scope="module")
def keys(home: Path) -> dict[str, str]:
    services = build_services(Settings(home=home))
    store = ApiKeyStore(services.registry)
    try:
        return {
            "app": store.create("app", models=("scaler", "echo"), rate="5/minute")[1],
            "ops": store.create("ops", scopes=("admin",))[1],
            "stranger": store.create("stranger", models=("iris",))[1],
            "revoked": store.create("leaver")[1],
        }
    finally:
        store.revoke("leaver")
        services.close()


def _settings(home: Path, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "home": home,
        "server": ServerSettings(models=["scaler", "echo"]),
        "models": {"echo": ModelSettings(output_filters=OutputFilterSettings(policy="redact"))},
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_401_403_429_matrix(home: Path, keys: dict[str, str]) -> None:
    with serve_in_process(create_app(_settings(home))) as client:
        infer = "/v1/models/scaler:predict"
        missing = client.post(infer, json=ROW)
        assert missing.status_code == 401
        assert "API key is required" in missing.json()["error"]
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert client.post(infer, json=ROW, headers=_bearer("sw_nope")).status_code == 401
        revoked = client.post(infer, json=ROW, headers=_bearer(keys["revoked"]))
        assert revoked.status_code == 401
        assert "revoked" in revoked.json()["error"]
        forbidden = client.post(infer, json=ROW, headers=_bearer(keys["stranger"]))
        assert forbidden.status_code == 403
        assert "may not call model 'scaler'" in forbidden.json()["error"]
        v2_forbidden = client.post(
            "/v2/models/scaler/infer",
            json={
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]
            },
            headers={"X-API-Key": keys["stranger"]},
        )
        assert v2_forbidden.status_code == 403
        assert set(v2_forbidden.json()) == {"error"}  # V2 keeps the protocol's error body

        # Probes and metrics stay open; metadata needs a key.
        assert client.get("/v2/health/ready").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/v2/models/scaler").status_code == 401
        assert client.get("/v2/models/scaler", headers=_bearer(keys["ops"])).status_code == 200

        answers = [
            client.post(infer, json=ROW, headers={"X-API-Key": keys["app"]}) for _ in range(6)
        ]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        assert [a.headers["ratelimit-remaining"] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
        assert answers[0].headers["ratelimit-limit"] == "5"
        limited = answers[-1]
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["ratelimit-remaining"] == "0"
        assert "rate limit of key 'app' exceeded" in limited.json()["error"]

        metrics = client.get("/metrics").text
        assert 'servewell_rate_limit_decisions_total{caller="app",outcome="limited"} 1.0' in metrics
        assert keys["app"] not in metrics


def test_cache_hits_bypass_and_output_filters(home: Path, keys: dict[str, str]) -> None:
    settings = _settings(home, rate_limits=RateLimitSettings(enabled=False))
    with serve_in_process(create_app(settings)) as client:
        headers = _bearer(keys["ops"])
        first = client.post("/v1/models/scaler:predict", json=ROW, headers=headers)
        second = client.post("/v1/models/scaler:predict", json=ROW, headers=headers)
        fresh = client.post(
            "/v1/models/scaler:predict", json=ROW, headers={**headers, "Cache-Control": "no-cache"}
        )
        assert [r.headers["x-cache"] for r in (first, second, fresh)] == ["miss", "hit", "miss"]
        assert first.json()["predictions"] == second.json()["predictions"] == [[2.0, 4.0]]

        text = {"in_BYTES": [["write to bob@example.com", "call 555-123-4567"]]}
        echoed = client.post(
            "/v1/models/echo:predict",
            json={"inputs": {**_echo_defaults(), **text}},
            headers=headers,
        )
        assert echoed.status_code == 200, echoed.text
        out = echoed.json()["predictions"][0]["out_BYTES"]
        assert out == ["write to [REDACTED:email]", "call [REDACTED:phone]"]
        metrics = client.get("/metrics").text
        assert 'servewell_cache_requests_total{model="scaler",outcome="hit"} 1.0' in metrics
        assert 'kind="email"' in metrics


def _echo_defaults() -> dict[str, list[list[object]]]:
    from serving_models import ECHO_VALUES

    return {f"in_{name}": [values] for name, values in ECHO_VALUES.items()}


def test_revocation_reaches_a_running_server_within_a_second(home: Path) -> None:
    services = build_services(Settings(home=home))
    store = ApiKeyStore(services.registry)
    name = f"short-lived-{time.monotonic_ns()}"
    _, token = store.create(name)
    try:
        with serve_in_thread(create_app(_settings(home))) as server:
            url = f"{server.url}/v1/models/scaler:predict"
            assert httpx.post(url, json=ROW, headers=_bearer(token)).status_code == 200
            store.revoke(name)  # as `servewell keys revoke` in another process would
            time.sleep(1.0)
            assert httpx.post(url, json=ROW, headers=_bearer(token)).status_code == 401
    finally:
        services.close()


def test_the_cache_never_crosses_versions(home: Path, keys: dict[str, str], redis_url: str) -> None:
    """Alias production moves from v1 to v2 between two servers sharing one Redis cache:
    the same input must get v2's answer, not v1's cached one."""
    settings = _settings(
        home,
        redis_url=redis_url,
        cache=CacheSettings(backend="redis"),
        rate_limits=RateLimitSettings(enabled=False),
    )
    row = {"instances": [[float(time.monotonic_ns() % 997), 1.0]]}  # fresh per run
    headers = _bearer(keys["ops"])
    with serve_in_thread(create_app(settings)) as server:
        url = f"{server.url}/v1/models/scaler:predict"
        v1 = [httpx.post(url, json=row, headers=headers) for _ in range(2)]
    assert [r.headers["x-cache"] for r in v1] == ["miss", "hit"]
    assert v1[0].json()["version"] == 1
    services = build_services(Settings(home=home))
    services.registry.set_alias("scaler", "production", 2)
    try:
        with serve_in_thread(create_app(settings)) as server:
            url = f"{server.url}/v1/models/scaler:predict"
            v2 = httpx.post(url, json=row, headers=headers)
    finally:
        services.registry.set_alias("scaler", "production", 1)
        services.close()
    assert v2.headers["x-cache"] == "miss"
    assert v2.json()["version"] == 2
    x = row["instances"][0][0]
    assert v1[0].json()["predictions"] == [[2 * x, 2.0]]
    assert v2.json()["predictions"] == [[3 * x, 3.0]]


def test_a_broken_redis_entry_is_a_miss(home: Path, keys: dict[str, str], redis_url: str) -> None:
    """Junk under a request's key (another program, a version skew) is answered as a
    miss and replaced, never served and never an error."""
    import redis

    settings = _settings(
        home,
        redis_url=redis_url,
        cache=CacheSettings(backend="redis"),
        rate_limits=RateLimitSettings(enabled=False),
    )
    body = orjson.dumps({"instances": [[float(time.monotonic_ns() % 991), 5.0]]})
    app = create_app(settings)
    with serve_in_thread(app) as server:
        layer = app.running.protection.cache
        assert layer is not None
        version = app.running.pool.get("scaler").version
        key = layer.key_for(version, "rest", b"application/json", None, body)
        assert key is not None
        client = redis.Redis.from_url(redis_url)
        client.set("servewell:cache:" + key, b"junk", px=60_000)
        url = f"{server.url}/v1/models/scaler:predict"
        headers = {**_bearer(keys["ops"]), "Content-Type": "application/json"}
        answers = [httpx.post(url, content=body, headers=headers) for _ in range(3)]
        stored = client.get("servewell:cache:" + key)
        client.close()
    assert stored != b"junk"  # the request's own key: the junk was read and replaced
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert answers[0].headers["x-cache"] == "miss"
    assert answers[0].json() == answers[2].json()
    assert answers[2].headers["x-cache"] == "hit"  # the junk was replaced


@pytest.mark.parametrize(
    ("policy", "status_while_down"), [("fail_open", 200), ("fail_closed", 503)]
)
def test_redis_down_follows_the_policy_and_recovers(
    home: Path,
    keys: dict[str, str],
    private_redis: PrivateRedis,
    policy: str,
    status_while_down: int,
) -> None:
    settings = _settings(
        home,
        redis_url=private_redis.url,
        rate_limits=RateLimitSettings(backend="redis", failure_policy=policy, redis_timeout_s=0.2),
        cache=CacheSettings(backend="redis"),
    )
    headers = _bearer(keys["ops"])
    with serve_in_process(create_app(settings)) as client:
        infer = "/v1/models/scaler:predict"
        assert client.post(infer, json=ROW, headers=headers).status_code == 200
        private_redis.stop()
        started = time.monotonic()
        down = client.post(infer, json=ROW, headers=headers)
        assert time.monotonic() - started < 5  # a short timeout, never a hang
        assert down.status_code == status_while_down
        if status_while_down == 503:
            assert down.headers["retry-after"] == "1"
            assert "rate limiter is unavailable" in down.json()["error"]
        private_redis.start()
        time.sleep(1.2)  # past the limiter's retry interval
        assert client.post(infer, json=ROW, headers=headers).status_code == 200
        metrics = client.get("/metrics").text
        assert 'outcome="degraded"' in metrics


def test_a_redis_url_alone_makes_replicas_share(
    home: Path, keys: dict[str, str], private_redis: PrivateRedis
) -> None:
    """With ``redis_url`` set and no backend named (``auto``), budgets and answers are
    kept in Redis: a second server (a replica) answers the first one's request from the
    cache. Without it, each server keeps its own."""
    import redis

    def first_answers(settings: Settings) -> list[str]:
        outcomes = []
        for _ in range(2):  # two replicas, one after the other
            with serve_in_process(create_app(settings)) as client:
                answer = client.post("/v1/models/scaler:predict", json=ROW, headers=headers)
                assert answer.status_code == 200
                outcomes.append(answer.headers["x-cache"])
        return outcomes

    headers = _bearer(keys["ops"])
    assert first_answers(_settings(home)) == ["miss", "miss"]
    assert first_answers(_settings(home, redis_url=private_redis.url)) == ["miss", "hit"]
    client = redis.Redis.from_url(private_redis.url)
    try:
        assert client.keys("servewell:rl:*")
        assert client.keys("servewell:cache:*")
    finally:
        client.close()


# --- two server processes, one Redis budget -------------------------------------------------


@contextmanager
def _server_process(home: Path, redis_url: str) -> Iterator[str]:
    env = {
        "SERVEWELL_REDIS_URL": redis_url,
        "SERVEWELL_RATE_LIMITS__BACKEND": "redis",
        "SERVEWELL_CACHE__BACKEND": "memory",
        "SERVEWELL_SERVER__ACCESS_LOG": "false",
    }
    with serve_process(home, "--models", "scaler", env=env) as (url, _):
        yield url


def test_two_servers_share_one_rate_budget_and_see_revocations(
    home: Path, private_redis: PrivateRedis
) -> None:
    services = build_services(Settings(home=home))
    store = ApiKeyStore(services.registry)
    name = f"shared-{time.monotonic_ns()}"
    _, token = store.create(name, rate="10/hour")  # no refill while 24 calls are made
    try:
        with (
            _server_process(home, private_redis.url) as first,
            _server_process(home, private_redis.url) as second,
        ):
            statuses = [
                httpx.post(
                    f"{url}/v1/models/scaler:predict", json=ROW, headers=_bearer(token)
                ).status_code
                for url in [first, second] * 12
            ]
            assert statuses.count(200) == 10
            assert statuses.count(429) == 14
            store.revoke(name)
            time.sleep(1.0)
            for url in (first, second):
                answer = httpx.post(
                    f"{url}/v1/models/scaler:predict", json=ROW, headers=_bearer(token)
                )
                assert answer.status_code == 401
    finally:
        services.close()


def test_an_unknown_route_is_a_404_for_a_valid_key(home: Path, keys: dict[str, str]) -> None:
    with serve_in_process(create_app(_settings(home))) as client:
        headers = _bearer(keys["app"])
        assert (
            client.post("/v1/models/scaler:explain", json=ROW, headers=headers).status_code == 404
        )
        admin = client.post("/admin/reload", json={}, headers=headers)
        assert admin.status_code == 403
        assert "lacks the 'admin' scope" in admin.json()["error"]


@pytest.mark.parametrize("serve", [serve_in_process, serve_in_thread])
@pytest.mark.parametrize(
    ("authorization", "says"),
    [
        ("{key}", "has no scheme"),
        ("Basic {key}", "scheme is not Bearer"),
        ("Bearer", "no key after 'Bearer'"),
    ],
)
def test_an_authorization_header_without_bearer_says_what_is_wrong(
    home: Path, keys: dict[str, str], serve: object, authorization: str, says: str
) -> None:
    headers = {"Authorization": authorization.format(key=keys["ops"])}
    with serve(create_app(_settings(home))) as server:  # type: ignore[operator]
        answers = [
            _call(server, "POST", "/v1/models/scaler:predict", json=ROW, headers=headers),
            _call(server, "GET", "/v1/models/scaler", headers=headers),
        ]
    for answer in answers:
        assert answer.status_code == 401
        assert says in answer.json()["error"]
        assert "Authorization: Bearer <key>" in answer.json()["error"]
        assert keys["ops"] not in answer.text  # the header may be a secret: never echoed
        assert answer.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("serve", [serve_in_process, serve_in_thread])
def test_with_keys_off_an_authorization_header_is_not_read(home: Path, serve: object) -> None:
    """Keys off, callers limited by address: a browser's or a proxy's ``Authorization:
    Basic`` is none of servewell's business (it used to be a 401)."""
    settings = _settings(home, auth=AuthSettings(enabled=False))
    headers = {"Authorization": "Basic dXNlcjpwYXNz"}
    with serve(create_app(settings)) as server:  # type: ignore[operator]
        answers = [
            _call(server, "POST", "/v1/models/scaler:predict", json=ROW, headers=headers),
            _call(server, "GET", "/v1/models/scaler", headers=headers),
        ]
    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[0].headers["ratelimit-limit"] == "6000"  # limited by address


@pytest.mark.parametrize("serve", [serve_in_process, serve_in_thread])
def test_an_unchecked_limit_sends_no_ratelimit_headers(
    home: Path, keys: dict[str, str], serve: object
) -> None:
    """Redis unreachable and ``fail_open``: calls pass unchecked, so no ``RateLimit-*``
    header claims a remaining budget (it used to say ``RateLimit-Remaining: 0``)."""
    settings = _settings(
        home,
        redis_url="redis://127.0.0.1:1/0",
        rate_limits=RateLimitSettings(
            backend="redis", failure_policy="fail_open", redis_timeout_s=0.2
        ),
        cache=CacheSettings(backend="memory"),
    )
    headers = _bearer(keys["app"])
    with serve(create_app(settings)) as server:  # type: ignore[operator]
        answers = [
            _call(server, "POST", "/v1/models/scaler:predict", json=ROW, headers=headers),
            _call(server, "GET", "/v1/models/scaler", headers=headers),
            _call(server, "GET", "/v2/health/live"),
        ]
        metrics = _call(server, "GET", "/metrics").text
    for answer in answers:
        assert answer.status_code == 200
        assert not [name for name in answer.headers if name.startswith("ratelimit-")]
    assert 'outcome="degraded"' in metrics


def _call(server: object, method: str, path: str, **options: object) -> httpx.Response:
    """A request to an in-process app or a threaded server alike."""
    if hasattr(server, "url"):
        return httpx.request(method, server.url + path, **options)  # type: ignore[arg-type]
    return server.request(method, path, **options)  # type: ignore[attr-defined, no-any-return]
