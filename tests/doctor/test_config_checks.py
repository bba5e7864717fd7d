"""Rate limits, keys, cache, logging, resilience and security: what the settings and the
key store say, each check failing (or warning) and passing."""

from __future__ import annotations

from doctor_context import MakeContext, statuses
from servewell.bootstrap import Services
from servewell.core.signature import Signature
from servewell.doctor.caching import CacheCheck
from servewell.doctor.context import Context
from servewell.doctor.finding import Finding, Status
from servewell.doctor.limits import KeyScopeCheck, RateLimitCheck
from servewell.doctor.logs import LoggingCheck
from servewell.doctor.resilience import ResilienceCheck
from servewell.doctor.security import SecurityCheck
from servewell.registration.register import RegisterOptions, register_file
from servewell.registry.keys import ApiKeyStore
from serving_models import PYTHON_MODELS


def test_rate_limiting_fails_when_off_or_without_keys(make_context: MakeContext) -> None:
    off = RateLimitCheck().run(make_context(rate_limits={"enabled": False}))
    assert statuses(off) == ["fail"]
    assert "enabled: true" in off[0].fix
    keyless = RateLimitCheck().run(make_context(auth={"enabled": False}))
    assert statuses(keyless) == ["fail"]
    assert "no per-key budget" in keyless[0].found
    assert "--no-auth" in keyless[0].fix


def test_rate_limiting_warns_of_the_default_nobody_chose_and_passes_a_chosen_one(
    fraud: Services, make_context: MakeContext
) -> None:
    keys = ApiKeyStore(fraud.registry)
    keys.create("checkout")
    assert statuses(RateLimitCheck().run(make_context())) == ["warn"]
    chosen = RateLimitCheck().run(make_context(rate_limits={"default_rate": "100/second"}))
    assert statuses(chosen) == ["pass"]
    assert "default_rate 100/second" in chosen[0].found


def test_rate_limiting_passes_when_every_key_has_its_own_rate(
    fraud: Services, make_context: MakeContext
) -> None:
    ApiKeyStore(fraud.registry).create("checkout", rate="50/second")
    found = RateLimitCheck().run(make_context())
    assert statuses(found) == ["pass"]
    assert "checkout: 50/second" in found[0].found


def test_keys_fail_when_only_an_admin_key_can_predict(
    fraud: Services, make_context: MakeContext
) -> None:
    keys = ApiKeyStore(fraud.registry)
    assert "no active key may predict" in KeyScopeCheck().run(make_context())[0].found
    keys.create("ops", scopes=("admin",))
    admin_only = KeyScopeCheck().run(make_context())
    assert statuses(admin_only) == ["fail"]
    assert "only admin keys (ops)" in admin_only[0].found
    keys.create("checkout", scopes=("predict",))
    scoped = KeyScopeCheck().run(make_context())
    assert statuses(scoped) == ["pass"]
    assert "predict keys: checkout" in scoped[0].found


def test_the_cache_warns_when_off_and_passes_a_non_deterministic_model_left_out(
    fraud: Services, make_context: MakeContext
) -> None:
    assert statuses(CacheCheck().run(make_context(cache={"enabled": False}))) == ["warn"]
    assert CacheCheck().run(make_context())[0].found.startswith("on, ttl 300 s")
    register_file(
        fraud,
        PYTHON_MODELS / "sum.py",
        "sampler",
        format="python",
        trust=True,
        options=RegisterOptions(
            signature=Signature.from_json_file(PYTHON_MODELS / "sum.json"),
            tags={"deterministic": "false"},
            alias="production",
        ),
    )
    sampler = [f for f in CacheCheck().run(make_context()) if f.model == "sampler"]
    assert statuses(sampler) == ["pass"]
    assert "never cached" in sampler[0].found


def test_logging_fails_without_the_access_line_and_passes_with_it(
    make_context: MakeContext,
) -> None:
    off = LoggingCheck().run(make_context(server={"access_log": False}))
    assert statuses(off) == ["fail"]
    assert statuses(LoggingCheck().run(make_context())) == ["pass"]


def test_resilience_fails_without_breaker_or_fallback_and_passes_a_chosen_timeout(
    make_context: MakeContext,
) -> None:
    bare = make_context(models={"fraud": {"breaker": {"enabled": False}}})
    assert statuses(ResilienceCheck().run(bare)) == ["fail"]
    default_deadline = ResilienceCheck().run(make_context())
    assert statuses(default_deadline) == ["warn"]
    assert "timeout_ms" in default_deadline[0].fix
    chosen = make_context(models={"fraud": {"timeout_ms": 200, "fallbacks": ["cache"]}})
    found = ResilienceCheck().run(chosen)
    assert statuses(found) == ["pass"]
    assert found[0].found == "timeout 200 ms; fallbacks cache and circuit breaker"


def test_security_fails_without_keys_and_warns_of_tls_with_how(make_context: MakeContext) -> None:
    findings = {f.item: f for f in SecurityCheck().run(make_context(auth={"enabled": False}))}
    assert findings["security: auth"].status is Status.FAIL
    assert "loopback" in findings["security: auth"].found
    assert findings["security: TLS"].status is Status.WARN
    assert "server.forwarded_allow_ips" in findings["security: TLS"].fix


def test_security_passes_keys_on_behind_a_proxy(make_context: MakeContext) -> None:
    context = make_context(server={"forwarded_allow_ips": ["10.0.0.0/8"]})
    assert statuses(SecurityCheck().run(context)) == ["pass", "pass", "pass", "pass"]


def test_security_warns_of_a_very_large_body_limit(make_context: MakeContext) -> None:
    context = make_context(server={"max_body_bytes": 512 * 2**20})
    assert statuses(SecurityCheck().run(context), "security: request limits") == ["warn"]


def test_logging_warns_of_text_inputs_kept_whole_or_hashed_with_the_built_in_key(
    fraud: Services, make_context: MakeContext
) -> None:
    register_file(
        fraud,
        PYTHON_MODELS / "shout.py",
        "chat",
        format="python",
        trust=True,
        options=RegisterOptions(
            signature=Signature.from_json_file(PYTHON_MODELS / "text.json"), alias="production"
        ),
    )

    def chat(context: Context) -> list[Finding]:
        return [f for f in LoggingCheck().run(context) if f.model == "chat"]

    hashed = chat(make_context())
    assert statuses(hashed) == ["warn"]
    assert hashed[0].fix == "SERVEWELL_MONITORING__HASH_KEY=<a secret> in the server's environment"
    whole = chat(make_context(models={"chat": {"monitoring": {"log_inputs": "full"}}}))
    assert "text inputs whole" in whole[0].found
    assert chat(make_context(monitoring={"hash_key": "s3cret"})) == []
