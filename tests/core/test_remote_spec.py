"""The remote spec file: what it holds, and one clear line for what it must not."""

from __future__ import annotations

from pathlib import Path

import pytest

from servewell.core.remote_spec import parse_remote_spec, read_remote_spec
from servewell.errors import InvalidInput

BASE = "kind: openai\nurl: https://api.example.com\nmodel: gpt-x\n"


def test_defaults_and_the_normalized_form_round_trip() -> None:
    spec = parse_remote_spec(BASE + "credential_env: OPENAI_API_KEY\nprices: {input_per_1k: 1}")
    assert spec.retries == 2
    assert spec.prices.output_per_1k == 0
    assert spec.timeouts.connect_s == 2
    assert parse_remote_spec(spec.to_yaml()) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "api_key: sk-123", "field 'api_key' looks like a secret"),
        (BASE + "extra: {Authorization: Bearer x}", "field 'extra.Authorization'"),
        (BASE + "credential_env: sk-live-abc", "credential_env: the NAME of an environment"),
        ("kind: openai\nurl: https://u:p@host\nmodel: m", "url: holds a user or password"),
        (BASE + "version: '2'", "version: only a v2 upstream"),
        (
            "kind: openai\nurl: http://127.0.0.1:8100/v1/\nmodel: m",
            "url: the upstream's address up to, not with, /v1 (servewell adds "
            "/v1/chat/completions): 'http://127.0.0.1:8100', not",
        ),
        (BASE + "retries: -1", "retries: Input should be greater than or equal to 0"),
        (BASE + "timeouts: {read_s: 0}", "timeouts.read_s"),
        ("kind: v2\nmodel: m", "url: Field required"),
        ("- a list", "must be a YAML mapping"),
        ("kind: [", "not valid YAML"),
    ],
)
def test_a_wrong_spec_is_one_line_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_remote_spec(text)
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_a_secret_value_is_never_quoted(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(BASE + "token: sk-very-secret")
    with pytest.raises(InvalidInput) as caught:
        read_remote_spec(path)
    assert "sk-very-secret" not in caught.value.message
    assert str(path) in caught.value.message
