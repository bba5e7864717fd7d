"""API keys on both registry backends: hashes only, listing, revocation."""

from __future__ import annotations

import pytest

from servewell.bootstrap import Services
from servewell.core.apikey import grants, parse_key, secret_matches
from servewell.errors import Conflict, InvalidInput, NotFound
from servewell.registry.keys import ApiKeyStore


def test_create_stores_only_a_hash(services: Services) -> None:
    store = ApiKeyStore(services.registry)
    key, token = store.create("ci-bot", scopes=("predict",), models=("iris",), rate="10/second")
    parsed = parse_key(token)
    assert parsed is not None
    key_id, secret = parsed
    assert key_id == key.key_id
    assert len(secret) == 43  # 256 bits
    assert secret not in key.secret_hash
    assert secret_matches(secret, key.secret_hash)
    assert not secret_matches(secret[:-1] + "x", key.secret_hash)
    assert key.models == ("iris",)
    assert key.rate == "10/second"
    assert key.display.startswith("sw_")
    assert token not in key.display


def test_list_and_revoke(services: Services) -> None:
    store = ApiKeyStore(services.registry)
    store.create("a", scopes=("predict", "admin"))
    store.create("b")
    assert [k.name for k in store.list()] == ["a", "b"]
    revoked = store.revoke("b")
    assert revoked.is_revoked
    assert [k.name for k in store.list(include_revoked=False)] == ["a"]
    with pytest.raises(Conflict, match="revoked already"):
        store.revoke("b")
    with pytest.raises(NotFound):
        store.revoke("ghost")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": "bad name"}, InvalidInput, "key name"),
        ({"name": "ci\n"}, InvalidInput, r"key name 'ci\\n' must be"),  # '$' matches before \n
        ({"name": "x", "scopes": ("root",)}, InvalidInput, "unknown scope"),
        ({"name": "x", "rate": "lots"}, InvalidInput, "not like 100/minute"),
    ],
)
def test_bad_keys(
    services: Services, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ApiKeyStore(services.registry).create(**kwargs)  # type: ignore[arg-type]
    assert ApiKeyStore(services.registry).list() == []


def test_duplicate_name(services: Services) -> None:
    store = ApiKeyStore(services.registry)
    store.create("dup")
    with pytest.raises(Conflict, match="exists already"):
        store.create("dup")


def test_scopes() -> None:
    assert grants(("predict",), "predict")
    assert not grants(("predict",), "admin")
    assert grants(("admin",), "predict")
    assert parse_key("Bearer nonsense") is None
