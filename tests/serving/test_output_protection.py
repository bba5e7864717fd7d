"""Output filters and the response cache layer's keys and switches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import numpy as np

from servewell.cache import MemoryResponseCache
from servewell.core.signature import Signature
from servewell.registry.records import ModelVersion
from servewell.serving.postprocess import WITHHELD, filter_outputs
from servewell.serving.response_cache import ResponseCacheLayer
from servewell.settings import (
    ModelCacheSettings,
    ModelSettings,
    OutputFilterSettings,
    Settings,
    ValidationSettings,
)


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


def _version(number: int, name: str = "m", **tags: str) -> ModelVersion:
    return ModelVersion(
        name=name,
        version=number,
        format="onnx",
        signature=Signature.from_dict(
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1]}]}
        ),
        artifacts=(),
        metrics={},
        params={},
        tags=tags,
        parent=None,
        created_at=datetime.now(UTC),
    )


def test_keys_name_the_resolved_version_and_the_filter_rules() -> None:
    """An alias moving from v3 to v4 changes every key; so do a model's output filter
    policy (answers are stored filtered) and the input limits (a Redis cache outlives a
    server); a version tagged non-deterministic has none."""
    request = ("rest", b"application/json", None, b'{"instances": [[1.0]]}')
    plain = ResponseCacheLayer(MemoryResponseCache(), Settings())
    redacting = ResponseCacheLayer(MemoryResponseCache(), _filtering("m", "redact"))
    blocking = ResponseCacheLayer(MemoryResponseCache(), _filtering("m", "block"))
    v3 = plain.key_for(_version(3), *request)
    assert v3 is not None
    assert v3.startswith("m@3:")
    assert v3 == plain.key_for(_version(3), *request)
    assert v3 != plain.key_for(_version(4), *request)
    # An empty binary-extension header is not a missing one (V2 refuses the empty one).
    assert v3 != plain.key_for(_version(3), "rest", b"application/json", b"", request[3])
    stricter = ResponseCacheLayer(
        MemoryResponseCache(), Settings(validation=ValidationSettings(max_rows=10))
    )
    layers = (plain, redacting, blocking, stricter)
    assert len({layer.key_for(_version(3), *request) for layer in layers}) == 4
    assert plain.key_for(_version(3, deterministic="false"), *request) is None


def _filtering(model: str, policy: Literal["redact", "block"]) -> Settings:
    return Settings(
        models={model: ModelSettings(output_filters=OutputFilterSettings(policy=policy))}
    )


def test_per_model_switches() -> None:
    layer = ResponseCacheLayer(
        MemoryResponseCache(),
        Settings(
            models={
                "random": ModelSettings(cache=ModelCacheSettings(enabled=False, ttl_s=None)),
                "slow": ModelSettings(cache=ModelCacheSettings(ttl_s=5)),
            }
        ),
    )
    assert layer.is_enabled_for("iris")
    assert not layer.is_enabled_for("random")
    assert not layer.is_enabled_for("iris", deterministic=False)
    assert layer.ttl_for("slow") == 5
    assert layer.ttl_for("iris") == 300
