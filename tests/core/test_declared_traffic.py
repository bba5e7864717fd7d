"""Traffic policies declared in the settings: read into policies with the CLI's checks
(one InvalidConfig naming the key), and which policy wins over the registry's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from servewell.core.traffic import (
    DEFAULT_STICKY_HEADER,
    Arm,
    Shadow,
    TrafficPolicy,
    active_policies,
    declared_policy,
    derived_experiment_id,
)
from servewell.errors import InvalidConfig
from servewell.settings import DeclaredTraffic, Settings, load_settings

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _declared(**entry: object) -> TrafficPolicy:
    settings = Settings(traffic={"fraud": entry})
    return declared_policy("fraud", settings.traffic["fraud"], "servewell.yaml", AT)


def _stored(*arms: Arm) -> TrafficPolicy:
    return TrafficPolicy("fraud", arms, DEFAULT_STICKY_HEADER, None, "exp-x", 7, AT, "user:x")


def test_the_decided_shape_reads_as_a_policy() -> None:
    policy = _declared(
        split={"2": 90, 3: 10},  # YAML gives a number key for `3: 10`
        sticky_header="X-Acct",
        shadow={"version": 4, "percent": 20},
        source="file",
    )
    assert policy.arms == (Arm("2", 90), Arm("3", 10))
    assert policy.sticky_header == "X-Acct"
    assert policy.shadow == Shadow("4", 20.0)
    assert policy.experiment_id == derived_experiment_id("fraud", policy.arms)  # as the CLI's
    assert (policy.source, policy.file_wins, policy.declared_in) == (
        "file",
        True,
        "servewell.yaml",
    )
    assert policy.updated_by == "file:servewell.yaml"
    plain = _declared(split={"canary": 100})
    assert (plain.file_wins, plain.sticky_header, plain.shadow) == (
        False,
        DEFAULT_STICKY_HEADER,
        None,
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"split": {"2": 90, "3": 20}},
            "traffic.fraud.split: weights must add up to 100; 2=90 3=20 adds up to 110",
        ),
        ({"split": {"-x": 100}}, "traffic.fraud.split: arm target '-x' is neither"),
        ({"split": {"0": 100}}, "traffic.fraud.split: arm target '0' is not a version number"),
        ({"split": {"2": 100}, "sticky_header": "X User"}, "traffic.fraud.sticky_header:"),
        ({"split": {"2": 100}, "experiment": "no spaces"}, "traffic.fraud.experiment:"),
        ({"shadow": {"version": "bad name!", "percent": 5}}, "traffic.fraud.shadow:"),
    ],
)
def test_a_policy_the_checks_refuse_is_one_line_naming_the_key(
    entry: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidConfig) as caught:
        _declared(**entry)
    assert message in caught.value.message
    assert caught.value.message.startswith("invalid settings (servewell.yaml): traffic.fraud.")
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("yaml", "names"),
    [
        ("traffic:\n  fraud:\n    split: {'2': 0}\n", "traffic.fraud.split.2"),
        ("traffic:\n  fraud:\n    shadow: {version: 3, percent: 120}\n", "percent"),
        ("traffic:\n  fraud:\n    source: database\n", "traffic.fraud.source"),
        ("traffic:\n  fraud:\n    splits: {'2': 100}\n", "did you mean 'traffic.fraud.split'"),
        ("traffic:\n  fraud:\n    split: {2: 50, '2': 50}\n", "arm '2' is named twice"),
    ],
)
def test_a_wrong_shape_in_the_file_stops_every_command_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yaml: str, names: str
) -> None:
    path = tmp_path / "servewell.yaml"
    path.write_text(yaml, encoding="utf-8")
    monkeypatch.setenv("SERVEWELL_CONFIG", str(path))
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    assert names in caught.value.message
    assert "\n" not in caught.value.message


def test_the_registry_wins_unless_the_file_says_source_file() -> None:
    stored = _stored(Arm("3", 100))
    file_default = _declared(split={"2": 100})
    file_wins = _declared(split={"2": 100}, source="file")
    assert active_policies([stored], {"fraud": file_default}) == {"fraud": stored}
    assert active_policies([], {"fraud": file_default}) == {"fraud": file_default}
    assert active_policies([stored], {"fraud": file_wins}) == {"fraud": file_wins}
    # A file that owns the model with nothing declared: no policy, whatever the registry says.
    owned_empty = _declared(source="file")
    assert active_policies([stored], {"fraud": owned_empty}) == {}
    assert active_policies([stored], {}) == {"fraud": stored}


def test_an_entry_defaults_to_the_registry_having_the_last_word() -> None:
    assert DeclaredTraffic().source == "registry"
    assert not DeclaredTraffic().owned_by_file
