import logging
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from servewell.bootstrap import build_protection, build_services
from servewell.cache import MemoryResponseCache, RedisResponseCache
from servewell.cli.serve import edge_options
from servewell.errors import InvalidConfig
from servewell.limits import MemoryRateLimiter, RedisRateLimiter
from servewell.settings import (
    AuthSettings,
    BatchingSettings,
    CacheSettings,
    OutputFilterSettings,
    RateLimitSettings,
    ResolvedCacheSettings,
    Settings,
    load_settings,
)
from servewell.settings.section import error_message


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no servewell.yaml and no SERVEWELL_CONFIG."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SERVEWELL_CONFIG", raising=False)
    return tmp_path


def test_max_json_depth_defaults_to_64(workdir: Path) -> None:
    assert load_settings().validation.max_json_depth == 64


def test_max_json_depth_is_read_from_the_file(workdir: Path) -> None:
    (workdir / "servewell.yaml").write_text("validation:\n  max_json_depth: 8\n")
    assert load_settings().validation.max_json_depth == 8


@pytest.mark.parametrize("depth", [0, -1])
def test_max_json_depth_below_one_is_one_line(workdir: Path, depth: int) -> None:
    (workdir / "servewell.yaml").write_text(f"validation:\n  max_json_depth: {depth}\n")
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert "validation.max_json_depth" in message
    assert "greater than or equal to 1" in message


def test_the_edge_limits_default_to_what_an_operator_can_keep(workdir: Path) -> None:
    server = load_settings().server
    assert server.max_header_bytes == 64 * 1024
    assert (server.header_timeout_s, server.body_timeout_s) == (10.0, 30.0)
    assert server.max_connections == 4096


@pytest.mark.parametrize(
    ("key", "value"),
    [("header_timeout_s", "0"), ("body_timeout_s", "-1"), ("max_connections", "0")],
)
def test_an_edge_limit_that_allows_nothing_is_one_line(workdir: Path, key: str, value: str) -> None:
    (workdir / "servewell.yaml").write_text(f"server:\n  {key}: {value}\n")
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert f"server.{key}" in message


# --- the models: section ----------------------------------------------------------------------


def test_a_models_entry_is_merged_over_the_defaults(workdir: Path) -> None:
    (workdir / "servewell.yaml").write_text(
        "server: {batching: {max_batch_delay_ms: 7}}\n"
        "cache: {ttl_s: 60}\n"
        "models:\n"
        "  fraud:\n"
        "    batching: {max_batch_size: 16}\n"
        "    cache: {enabled: false}\n"
        "    output_filters: {policy: block, kinds: [card]}\n"
        "  slow:\n"
        "    cache: {ttl_s: 5}\n"
    )
    settings = load_settings()
    fraud = settings.model("fraud")
    assert fraud.batching.max_batch_size == 16
    assert fraud.batching.max_batch_delay_ms == 7  # server.batching
    assert fraud.batching.max_queue_size == BatchingSettings().max_queue_size
    assert fraud.cache == ResolvedCacheSettings(enabled=False, ttl_s=60)
    assert fraud.output_filters == OutputFilterSettings(policy="block", kinds=["card"])
    assert settings.model("slow").cache == ResolvedCacheSettings(enabled=True, ttl_s=5)
    other = settings.model("other")
    assert other.batching == settings.server.batching
    assert other.cache == ResolvedCacheSettings(enabled=True, ttl_s=60)
    assert other.output_filters is None


def test_the_cache_switched_off_stays_off_for_every_model(workdir: Path) -> None:
    (workdir / "servewell.yaml").write_text(
        "cache: {enabled: false}\nmodels: {fraud: {cache: {enabled: true}}}\n"
    )
    assert not load_settings().model("fraud").cache.enabled


def test_a_models_entry_from_the_environment(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment is stronger than the file, field by field."""
    (workdir / "servewell.yaml").write_text(
        "models: {fraud: {batching: {max_batch_size: 4, max_queue_size: 9}}}\n"
    )
    monkeypatch.setenv("SERVEWELL_MODELS__FRAUD__BATCHING__MAX_BATCH_SIZE", "16")
    monkeypatch.setenv("SERVEWELL_MODELS__FRAUD__OUTPUT_FILTERS__POLICY", "block")
    fraud = load_settings().model("fraud")
    assert fraud.batching.max_batch_size == 16
    assert fraud.batching.max_queue_size == 9
    assert fraud.output_filters == OutputFilterSettings(policy="block")


def test_model_names_match_ignoring_case_and_separators(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Environment names are case-insensitive and cannot hold '-': BIG_MODEL in a
    variable is the model Big-Model, and merges with the file's spelling of it."""
    (workdir / "servewell.yaml").write_text(
        "models: {Big-Model: {cache: {ttl_s: 5}, batching: {max_batch_size: 3}}}\n"
    )
    monkeypatch.setenv("SERVEWELL_MODELS__BIG_MODEL__CACHE__TTL_S", "9")
    settings = load_settings()
    for spelling in ("Big-Model", "big-model", "big_model", "BIG.MODEL"):
        assert settings.model(spelling).cache.ttl_s == 9
        assert settings.model(spelling).batching.max_batch_size == 3
    assert settings.model("bigmodel").cache.ttl_s == 300


def test_two_spellings_of_one_model_in_one_place_are_refused(workdir: Path) -> None:
    (workdir / "servewell.yaml").write_text("models: {Fraud: {}, fraud-: {}, fraud: {}}\n")
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    assert str(caught.value) == (
        "models in servewell.yaml: 'Fraud' and 'fraud' name the same model "
        "(model names match ignoring case, with '-', '.' and '_' alike)"
    )


# --- the old spellings ------------------------------------------------------------------------

OLD_SPELLINGS = (
    "server:\n"
    "  model_batching: {fraud: {max_batch_size: 8, max_batch_delay_ms: 5}}\n"
    "cache:\n"
    "  models: {fraud: {enabled: false, ttl_s: 5}, slow: {ttl_s: 30}}\n"
    "output_filters:\n"
    "  fraud: {policy: block, kinds: [ssn]}\n"
)


def test_the_old_spellings_still_work_with_one_line_each(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (workdir / "servewell.yaml").write_text(OLD_SPELLINGS)
    with caplog.at_level(logging.WARNING):
        settings = load_settings()
    fraud = settings.model("fraud")
    assert fraud.batching.max_batch_size == 8
    assert fraud.batching.max_batch_delay_ms == 5
    assert fraud.cache == ResolvedCacheSettings(enabled=False, ttl_s=5)
    assert fraud.output_filters == OutputFilterSettings(policy="block", kinds=["ssn"])
    assert settings.model("slow").cache.ttl_s == 30
    assert [record.getMessage() for record in caplog.records] == [
        "server.model_batching is deprecated; use models.<name>.batching (given for: fraud)",
        "cache.models is deprecated; use models.<name>.cache (given for: fraud, slow)",
        "output_filters is deprecated; use models.<name>.output_filters (given for: fraud)",
    ]


def test_the_new_spelling_wins_field_by_field(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (workdir / "servewell.yaml").write_text(
        OLD_SPELLINGS + "models:\n"
        "  fraud:\n"
        "    batching: {max_batch_size: 16}\n"
        "    cache: {ttl_s: 9}\n"
        "    output_filters: {policy: redact}\n"
    )
    fraud = load_settings().model("fraud")
    assert fraud.batching.max_batch_size == 16  # new
    assert fraud.batching.max_batch_delay_ms == 5  # old, not given anew
    assert fraud.cache == ResolvedCacheSettings(enabled=False, ttl_s=9)
    assert fraud.output_filters == OutputFilterSettings(policy="redact", kinds=["ssn"])


def test_no_old_spelling_no_deprecation_line(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (workdir / "servewell.yaml").write_text("models: {fraud: {cache: {ttl_s: 9}}}\n")
    with caplog.at_level(logging.WARNING):
        load_settings()
    assert caplog.records == []


# --- unknown settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "rate_limit: {}\n",
            "unknown setting 'rate_limit' in servewell.yaml; did you mean 'rate_limits'?",
        ),
        (
            "server: {max_body_byte: 1}\n",
            "unknown setting 'server.max_body_byte' in servewell.yaml; "
            "did you mean 'server.max_body_bytes'?",
        ),
        (
            "server: {batching: {max_batch_sise: 2}}\n",
            "unknown setting 'server.batching.max_batch_sise' in servewell.yaml; "
            "did you mean 'server.batching.max_batch_size'?",
        ),
        (
            "models: {fraud: {batchng: {}}}\n",
            "unknown setting 'models.fraud.batchng' in servewell.yaml; "
            "did you mean 'models.fraud.batching'?",
        ),
        (
            "models: {fraud: {output_filters: {polcy: block}}}\n",
            "unknown setting 'models.fraud.output_filters.polcy' in servewell.yaml; "
            "did you mean 'models.fraud.output_filters.policy'?",
        ),
        (
            "cache: {models: {slow: {ttl: 1}}}\n",
            "unknown setting 'cache.models.slow.ttl' in servewell.yaml; "
            "did you mean 'cache.models.slow.ttl_s'?",
        ),
        (
            "auth: {zzz: 1}\n",
            "unknown setting 'auth.zzz' in servewell.yaml; valid here: 'auth.enabled', "
            "'auth.open_paths', 'auth.refresh_interval_s', 'auth.failed_attempts_rate', "
            "'auth.session_ttl_s', 'auth.session_secret'",
        ),
    ],
)
def test_an_unknown_key_in_the_file_is_refused(workdir: Path, yaml_text: str, message: str) -> None:
    (workdir / "servewell.yaml").write_text(yaml_text)
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    assert str(caught.value) == message


def test_the_file_named_by_servewell_config_is_checked(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = workdir / "elsewhere.yaml"
    path.write_text("validation: {max_row: 3}\n")
    monkeypatch.setenv("SERVEWELL_CONFIG", str(path))
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    assert str(caught.value) == (
        f"unknown setting 'validation.max_row' in {path}; did you mean 'validation.max_rows'?"
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("SERVEWELL_RATE_LIMIT", "did you mean SERVEWELL_RATE_LIMITS?"),
        ("SERVEWELL_SERVER__MAX_BODY_BYTE", "did you mean SERVEWELL_SERVER__MAX_BODY_BYTES?"),
        ("SERVEWELL_CACHE__TTL", "did you mean SERVEWELL_CACHE__TTL_S?"),
        (
            "SERVEWELL_MODELS__FRAUD__BATCHING__MAX_BATCH",
            "did you mean SERVEWELL_MODELS__FRAUD__BATCHING__MAX_BATCH_SIZE?",
        ),
        (
            "SERVEWELL_SERVER__MODEL_BATCHING__FRAUD__MAX_QUEUE",
            "did you mean SERVEWELL_SERVER__MODEL_BATCHING__FRAUD__MAX_QUEUE_SIZE?",
        ),
        ("SERVEWELL_SERVER__PORT__NUMBER", "SERVEWELL_SERVER__PORT takes a value"),
        ("SERVEWELL_SERVER__NO_SUCH_SETTING", "valid here: SERVEWELL_SERVER__HOST, "),
    ],
)
def test_an_unknown_variable_is_refused(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, name: str, message: str
) -> None:
    monkeypatch.setenv(name, "1")
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    text = str(caught.value)
    assert text.startswith(f"unknown setting {name} in the environment; ")
    assert message in text
    assert len(text.splitlines()) == 1


def test_an_unknown_key_in_a_section_given_as_json_is_refused(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVEWELL_SERVER", '{"max_body_byte": 1}')
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    assert str(caught.value) == (
        "invalid settings (environment or servewell.yaml): unknown setting "
        "'server.max_body_byte'; did you mean 'server.max_body_bytes'?"
    )


def test_a_validator_s_message_reads_without_pydantic_s_prefix(workdir: Path) -> None:
    (workdir / "servewell.yaml").write_text(
        "models:\n  fraud:\n    fallbacks: [{default: {y: 0}}, cache]\n"
    )
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    assert str(caught.value) == (
        "invalid settings (environment or servewell.yaml): models.fraud: "
        "fallbacks: 'default' always answers, so it comes last"
    )


def test_an_assertion_s_message_reads_without_pydantic_s_prefix() -> None:
    class Checked(BaseModel):
        size: int

        @field_validator("size")
        @classmethod
        def positive(cls, size: int) -> int:
            assert size > 0, "size must be positive"
            return size

    with pytest.raises(ValidationError) as caught:
        Checked(size=0)
    assert error_message(caught.value.errors()[0]) == "size must be positive"


def test_servewell_variables_that_are_not_settings_are_fine(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "other.yaml").write_text("validation: {max_rows: 3}\n")
    monkeypatch.setenv("SERVEWELL_CONFIG", str(workdir / "other.yaml"))
    monkeypatch.setenv("SERVEWELL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("SERVEWELL_TEST_REDIS", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("SERVEWELL_TEST_DEADLINE_S", "600")
    monkeypatch.setenv("SERVEWELL_SERVER__BATCHING__MAX_BATCH_SIZE", "5")
    settings = load_settings()
    assert settings.validation.max_rows == 3
    assert settings.server.batching.max_batch_size == 5


# --- backend: auto ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("redis", "backend", "shared"),
    [
        (True, "auto", True),
        (False, "auto", False),
        (True, "memory", False),
        (True, "redis", True),
        (False, "memory", False),
    ],
)
def test_auto_is_redis_exactly_when_there_is_a_redis_url(
    workdir: Path, redis_url: str, redis: bool, backend: str, shared: bool
) -> None:
    settings = Settings(
        home=workdir / "home",
        auth=AuthSettings(enabled=False),
        redis_url=redis_url if redis else None,
        rate_limits=RateLimitSettings(backend=backend),  # type: ignore[arg-type]
        cache=CacheSettings(backend=backend),  # type: ignore[arg-type]
    )
    services = build_services(settings)
    try:
        protection = build_protection(settings, services)
    finally:
        services.close()
    assert protection.cache is not None
    assert isinstance(protection.limiter, RedisRateLimiter) is shared
    assert isinstance(protection.cache.cache, RedisResponseCache) is shared
    assert isinstance(protection.limiter, MemoryRateLimiter) is not shared
    assert isinstance(protection.cache.cache, MemoryResponseCache) is not shared


def test_the_backends_default_to_auto(workdir: Path) -> None:
    settings = load_settings()
    assert settings.rate_limits.backend == "auto"
    assert settings.cache.backend == "auto"


def test_a_copy_resolves_its_models_afresh(workdir: Path) -> None:
    settings = load_settings()
    assert settings.model("fraud").cache.ttl_s == 300
    copy = settings.model_copy(update={"cache": CacheSettings(ttl_s=5)})
    assert copy.model("fraud").cache.ttl_s == 5
    assert settings.model("fraud").cache.ttl_s == 300


# --- the edge: trusted proxies, failed authentications ---------------------------------------


def test_forwarded_headers_are_ignored_unless_a_proxy_is_trusted(workdir: Path) -> None:
    settings = load_settings()
    assert settings.server.forwarded_allow_ips == []
    assert edge_options(settings.server) == {
        "ws": "none",
        "proxy_headers": False,
        "forwarded_allow_ips": None,
    }


@pytest.mark.parametrize(
    ("value", "trusted"),
    [
        ("*", ["*"]),
        ("10.0.0.1, 10.1.0.0/16", ["10.0.0.1", "10.1.0.0/16"]),
        ('["::1", "fd00::/8"]', ["::1", "fd00::/8"]),
    ],
)
def test_trusted_proxies_from_the_environment(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, value: str, trusted: list[str]
) -> None:
    monkeypatch.setenv("SERVEWELL_SERVER__FORWARDED_ALLOW_IPS", value)
    settings = load_settings()
    assert settings.server.forwarded_allow_ips == trusted
    options = edge_options(settings.server)
    assert (options["proxy_headers"], options["forwarded_allow_ips"]) == (True, trusted)


def test_a_trusted_proxy_that_is_no_address_is_one_line(workdir: Path) -> None:
    (workdir / "servewell.yaml").write_text("server:\n  forwarded_allow_ips: [10.0.0.1, proxy]\n")
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert "server.forwarded_allow_ips" in message
    assert "'proxy' is not an IP address, a network (10.0.0.0/8) or '*'" in message


@pytest.mark.parametrize(
    ("redis", "backend", "shared"),
    [(True, "auto", True), (False, "auto", False), (True, "memory", False)],
)
@pytest.mark.parametrize("limits_on", [True, False])
def test_failed_authentications_are_counted_where_the_rate_limits_are(
    workdir: Path, redis_url: str, redis: bool, backend: str, shared: bool, limits_on: bool
) -> None:
    settings = Settings(
        home=workdir / "home",
        redis_url=redis_url if redis else None,
        rate_limits=RateLimitSettings(backend=backend, enabled=limits_on),  # type: ignore[arg-type]
    )
    services = build_services(settings)
    try:
        protection = build_protection(settings, services)
    finally:
        services.close()
    assert protection.lockout is not None
    assert isinstance(protection.lockout.limiter, RedisRateLimiter) is shared
    assert protection.lockout.decides_now is not shared
    if shared and limits_on:
        assert protection.lockout.limiter is protection.limiter  # one connection
    elif not shared:
        assert protection.lockout.limiter is not protection.limiter  # a table of its own


@pytest.mark.parametrize(
    "auth", [AuthSettings(enabled=False), AuthSettings(failed_attempts_rate=None)]
)
def test_no_lockout_without_keys_or_with_a_null_rate(workdir: Path, auth: AuthSettings) -> None:
    settings = Settings(home=workdir / "home", auth=auth)
    services = build_services(settings)
    try:
        assert build_protection(settings, services).lockout is None
    finally:
        services.close()
