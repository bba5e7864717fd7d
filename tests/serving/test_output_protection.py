"""Output filters and the response cache layer, on real caches."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from servewell.cache import MemoryResponseCache, RedisResponseCache, ResponseCache
from servewell.serving.postprocess import WITHHELD, filter_outputs
from servewell.serving.response_cache import ResponseCacheLayer
from servewell.settings import CacheSettings, ModelCacheSettings, OutputFilterSettings


def test_filters_redact_text_outputs_and_leave_numbers() -> None:
    outputs = {
        "reply": np.array([b"mail me at a@example.com", b"nothing here"], dtype=np.object_),
        "score": np.array([0.5, 0.7], dtype=np.float32),
    }
    outcome = filter_outputs(outputs, OutputFilterSettings(policy="redact"))
    assert list(outcome.outputs["reply"]) == [b"mail me at [REDACTED:email]", b"nothing here"]
    assert outcome.outputs["score"] is outputs["score"]
    assert outcome.findings == {"email": 1}
    assert outcome.blocked == 0


def test_block_policy_withholds_the_item() -> None:
    outputs = {"reply": np.array([b"card 4111 1111 1111 1111", b"fine"], dtype=np.object_)}
    outcome = filter_outputs(outputs, OutputFilterSettings(policy="block", kinds=["card"]))
    assert list(outcome.outputs["reply"]) == [WITHHELD, b"fine"]
    assert outcome.blocked == 1


def test_no_rule_passes_through() -> None:
    outputs = {"reply": np.array([b"a@example.com"], dtype=np.object_)}
    assert filter_outputs(outputs, None).outputs["reply"][0] == b"a@example.com"


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> ResponseCache:
    if request.param == "memory":
        return MemoryResponseCache()
    url = request.getfixturevalue("redis_url")
    return RedisResponseCache(url, prefix=f"test:{uuid.uuid4().hex}:")


@pytest.mark.anyio
async def test_the_cache_layer_never_crosses_versions(cache: ResponseCache) -> None:
    layer = ResponseCacheLayer(cache, CacheSettings())
    inputs = {"input": np.array([[1.0, 2.0]], dtype=np.float32)}
    calls: list[int] = []

    def model(version: int):  # type: ignore[no-untyped-def]
        async def compute() -> tuple[dict[str, np.ndarray], int]:
            calls.append(version)
            return {"label": np.array([version], dtype=np.int64)}, 1

        return compute

    first = await layer.through("m", 3, inputs, model(3))
    again = await layer.through("m", 3, inputs, model(3))
    other = await layer.through("m", 4, inputs, model(4))
    fresh = await layer.through("m", 3, inputs, model(3), bypass=True)
    assert (first.hit, again.hit, other.hit, fresh.hit) == (False, True, False, False)
    assert again.outputs["label"].tolist() == [3]
    assert other.outputs["label"].tolist() == [4]
    assert calls == [3, 4, 3]
    await cache.close()


def test_per_model_switches() -> None:
    layer = ResponseCacheLayer(
        MemoryResponseCache(),
        CacheSettings(
            models={
                "random": ModelCacheSettings(enabled=False, ttl_s=None),
                "slow": ModelCacheSettings(ttl_s=5),
            }
        ),
    )
    assert layer.is_enabled_for("iris")
    assert not layer.is_enabled_for("random")
    assert not layer.is_enabled_for("iris", deterministic=False)
    assert layer.ttl_for("slow") == 5
    assert layer.ttl_for("iris") == 300
