"""Traffic policies in the registry, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from servewell.bootstrap import Services
from servewell.core.traffic import DEFAULT_STICKY_HEADER, Arm, Shadow
from servewell.errors import (
    AliasNotFound,
    InvalidTrafficPolicy,
    ModelNotFound,
    VersionNotFound,
)
from servewell.registry.traffic import TrafficStore
from serving_models import register_python


@pytest.fixture
def store(services: Services) -> TrafficStore:
    for _ in range(3):
        register_python(services, "fraud", "sum", signature="sum.json")
    services.registry.set_alias("fraud", "production", 2)
    services.registry.set_alias("fraud", "canary", 3)
    return TrafficStore(services.registry)


def _arms(spelled: str) -> list[Arm]:
    return [Arm.parse(part) for part in spelled.split()]


def test_a_split_is_stored_and_read_back(store: TrafficStore) -> None:
    assert store.get("fraud") is None
    written = store.set_split("fraud", _arms("2=90 3=10"), by="user:ana")
    read = store.get("fraud")
    assert read == written
    assert read is not None
    assert read.arms == (Arm("2", 90), Arm("3", 10))
    assert [read.share(arm) for arm in read.arms] == [0.9, 0.1]
    assert read.sticky_header == DEFAULT_STICKY_HEADER
    assert read.shadow is None
    assert read.updated_by == "user:ana"
    assert read.experiment_id.startswith("exp-")
    assert store.list() == [read]


def test_arms_may_name_aliases_and_a_sticky_header(store: TrafficStore) -> None:
    policy = store.set_split("fraud", _arms("production=75 canary=25"), sticky_header="X-Acct")
    assert policy.arms[1].alias == "canary"
    assert policy.arms[0].version is None
    assert policy.sticky_header == "X-Acct"
    # A later split without a header keeps the stored one.
    assert store.set_split("fraud", _arms("production=50 canary=50")).sticky_header == "X-Acct"


@pytest.mark.parametrize(
    ("spelled", "error", "message"),
    [
        ("2=90 3=20", InvalidTrafficPolicy, "weights must add up to 100; 2=90 3=20 adds up to 110"),
        ("2=100 2=0", InvalidTrafficPolicy, "arm '2' is named twice"),
        ("2=100 3=0", InvalidTrafficPolicy, "arm '3' has weight 0"),
        ("2=60 production=40", InvalidTrafficPolicy, "'2' and 'production' of model 'fraud'"),
        ("2=90 7=10", VersionNotFound, "model 'fraud' has no version 7"),
        ("2=90 blue=10", AliasNotFound, "model 'fraud' has no alias 'blue'"),
    ],
)
def test_bad_splits_are_refused_and_change_nothing(
    store: TrafficStore, spelled: str, error: type[Exception], message: str
) -> None:
    store.set_split("fraud", _arms("2=50 3=50"))
    before = (store.get("fraud"), store.revision())
    with pytest.raises(error, match=message):
        store.set_split("fraud", _arms(spelled))
    assert (store.get("fraud"), store.revision()) == before


def test_other_bad_requests(store: TrafficStore) -> None:
    with pytest.raises(InvalidTrafficPolicy, match="not an HTTP header name"):
        store.set_split("fraud", _arms("2=100"), sticky_header="X User")
    with pytest.raises(InvalidTrafficPolicy, match="experiment id"):
        store.set_split("fraud", _arms("2=100"), experiment_id="not ok!")
    with pytest.raises(InvalidTrafficPolicy, match="at least one arm"):
        store.set_split("fraud", [])
    with pytest.raises(InvalidTrafficPolicy, match="between 0 and 100, got 120"):
        store.set_shadow("fraud", Shadow("3", 120))
    with pytest.raises(InvalidTrafficPolicy, match="between 0 and 100, got nan"):
        store.set_shadow("fraud", Shadow("3", float("nan")))
    with pytest.raises(VersionNotFound):
        store.set_shadow("fraud", Shadow("9", 10))
    with pytest.raises(ModelNotFound):
        store.set_split("ghost", _arms("1=100"))
    assert store.get("fraud") is None


def test_the_experiment_id_follows_the_arms_not_the_weights(store: TrafficStore) -> None:
    first = store.set_split("fraud", _arms("2=90 3=10")).experiment_id
    assert store.set_split("fraud", _arms("2=75 3=25")).experiment_id == first
    other = store.set_split("fraud", _arms("2=90 1=10")).experiment_id
    assert other != first
    assert store.set_split("fraud", _arms("2=90 1=10"), experiment_id="q3").experiment_id == "q3"
    assert store.set_split("fraud", _arms("2=80 1=20")).experiment_id == "q3"  # kept
    assert store.set_split("fraud", _arms("2=90 3=10")).experiment_id == first  # derived again


def test_a_shadow_lives_beside_the_split(store: TrafficStore) -> None:
    store.set_shadow("fraud", Shadow("3", 20))
    shadow_only = store.get("fraud")
    assert shadow_only is not None
    assert shadow_only.arms == ()
    assert shadow_only.shadow == Shadow("3", 20.0)
    store.set_split("fraud", _arms("1=50 2=50"))
    both = store.get("fraud")
    assert both is not None
    assert both.shadow == Shadow("3", 20.0)
    assert both.arms == (Arm("1", 50), Arm("2", 50))
    store.set_shadow("fraud", None)
    split_only = store.get("fraud")
    assert split_only is not None
    assert split_only.shadow is None
    assert split_only.arms == both.arms


def test_clear_removes_the_policy_and_is_idempotent(store: TrafficStore) -> None:
    store.set_split("fraud", _arms("2=90 3=10"))
    store.set_shadow("fraud", Shadow("canary", 5))
    cleared = store.clear("fraud", by="user:bo")
    assert cleared is not None
    assert cleared.shadow == Shadow("canary", 5.0)
    assert store.get("fraud") is None
    assert store.list() == []
    assert store.clear("fraud") is None


def test_the_revision_rises_with_every_change(services: Services, store: TrafficStore) -> None:
    seen = [store.revision()]

    def changed() -> None:
        now = store.revision()
        assert now != seen[-1]
        assert now.policies >= seen[-1].policies
        assert now.aliases >= seen[-1].aliases
        seen.append(now)

    store.set_split("fraud", _arms("2=90 3=10"))
    changed()
    store.set_shadow("fraud", Shadow("3", 10))
    changed()
    store.clear("fraud")  # an emptied policy keeps its row: the highest revision only rises
    changed()
    services.registry.set_alias("fraud", "production", 1)
    changed()
    assert seen[-1].aliases > seen[-2].aliases
    assert store.revision() == seen[-1]  # nothing changed, nothing to re-read


def test_concurrent_writers_never_share_a_revision(services: Services, store: TrafficStore) -> None:
    """Two writers may pick the same next revision (PostgreSQL): one is retried."""
    register_python(services, "other", "sum", signature="sum.json")
    register_python(services, "other", "sum", signature="sum.json")
    failures: list[BaseException] = []

    def write(model: str) -> None:
        try:
            for weight in range(10, 20):
                store.set_split(model, _arms(f"1={weight} 2={100 - weight}"))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(model,)) for model in ("fraud", "other")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    policies = store.list()
    assert [p.arms[0].weight for p in policies] == [19, 19]
    assert store.revision().policies == 20
    assert len({p.revision for p in policies}) == 2
