"""Authentication, authorization and rate limits, on a real registry and real limiters."""

from __future__ import annotations

import asyncio

import pytest

from servewell.bootstrap import Services
from servewell.errors import Forbidden, RateLimited, Unauthorized, Unavailable
from servewell.limits import MemoryRateLimiter, RedisRateLimiter
from servewell.registry.keys import ApiKeyStore
from servewell.serving.guard import Guard
from servewell.serving.keyring import KeyRing
from servewell.settings import RateLimitSettings


@pytest.fixture
async def keyring(sqlite_services: Services) -> KeyRing:
    ring = KeyRing(ApiKeyStore(sqlite_services.registry), refresh_interval_s=0.1)
    await ring.start()
    yield ring  # type: ignore[misc]
    await ring.stop()


def _store(services: Services) -> ApiKeyStore:
    return ApiKeyStore(services.registry)


@pytest.mark.anyio
async def test_the_401_403_429_matrix(keyring: KeyRing, sqlite_services: Services) -> None:
    store = _store(sqlite_services)
    _, predict_token = store.create("app", scopes=("predict",), models=("iris",), rate="2/minute")
    _, admin_token = store.create("ops", scopes=("admin",))
    await keyring.refresh()
    guard = Guard(keyring, MemoryRateLimiter(), RateLimitSettings())

    with pytest.raises(Unauthorized, match="API key is required"):
        await guard.admit(None, "127.0.0.1", "predict", "iris")
    with pytest.raises(Unauthorized, match="not valid"):
        await guard.admit("sw_aaaaaaaaaaaa_" + "x" * 43, "127.0.0.1", "predict", "iris")
    tampered = predict_token[:-1] + ("B" if predict_token.endswith("A") else "A")
    with pytest.raises(Unauthorized, match="not valid"):
        await guard.admit(tampered, "127.0.0.1", "predict", "iris")
    with pytest.raises(Forbidden, match="lacks the 'admin' scope"):
        await guard.admit(predict_token, "127.0.0.1", "admin")
    with pytest.raises(Forbidden, match="may not call model 'other'"):
        await guard.admit(predict_token, "127.0.0.1", "predict", "other")

    caller = await guard.admit(predict_token, "127.0.0.1", "predict", "iris")
    assert caller.name == "app"
    assert caller.decision is not None
    assert caller.decision.remaining == 1
    await guard.admit(predict_token, "127.0.0.1", "predict", "iris")
    with pytest.raises(RateLimited, match="rate limit of key 'app' exceeded") as refused:
        await guard.admit(predict_token, "127.0.0.1", "predict", "iris")
    assert refused.value.retry_after_s >= 1
    assert refused.value.headers["RateLimit-Remaining"] == "0"

    admin = await guard.admit(admin_token, "127.0.0.1", "predict", "other")  # admin ⊇ predict
    assert admin.name == "ops"


@pytest.mark.anyio
async def test_revocation_reaches_the_ring_within_a_second(
    keyring: KeyRing, sqlite_services: Services
) -> None:
    _, token = _store(sqlite_services).create("temp")
    await keyring.refresh()
    guard = Guard(keyring, None, RateLimitSettings())
    await guard.admit(token, "127.0.0.1", "predict", "iris")
    _store(sqlite_services).revoke("temp")  # another process would do the same
    await asyncio.sleep(1.0)  # the background refresh runs every 0.1 s here
    with pytest.raises(Unauthorized, match="'temp' was revoked"):
        await guard.admit(token, "127.0.0.1", "predict", "iris")


@pytest.mark.anyio
async def test_per_model_limit(keyring: KeyRing, sqlite_services: Services) -> None:
    _, token = _store(sqlite_services).create("app")
    await keyring.refresh()
    guard = Guard(keyring, MemoryRateLimiter(), RateLimitSettings(model_rates={"big": "1/minute"}))
    await guard.admit(token, "127.0.0.1", "predict", "big")
    with pytest.raises(RateLimited, match="on model 'big'"):
        await guard.admit(token, "127.0.0.1", "predict", "big")
    await guard.admit(token, "127.0.0.1", "predict", "small")


@pytest.mark.anyio
async def test_without_keys_clients_are_limited_by_address() -> None:
    guard = Guard(None, MemoryRateLimiter(), RateLimitSettings(anonymous_rate="1/minute"))
    assert (await guard.admit(None, "10.0.0.1", "predict", "iris")).name == "ip:10.0.0.1"
    with pytest.raises(RateLimited, match=r"client 10\.0\.0\.1"):
        await guard.admit(None, "10.0.0.1", "predict", "iris")
    await guard.admit(None, "10.0.0.2", "predict", "iris")


@pytest.mark.anyio
async def test_fail_closed_answers_unavailable() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", failure_policy="fail_closed", timeout_s=0.1)
    guard = Guard(None, limiter, RateLimitSettings())
    with pytest.raises(Unavailable, match="rate limiter is unavailable"):
        await guard.admit(None, "10.0.0.1", "predict")
    await limiter.close()
