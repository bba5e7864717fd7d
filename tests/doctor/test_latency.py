"""The deadline, alert and load-test SLO the doctor's fixes name: a local model's in
milliseconds, a remote chat model's from its spec's timeouts or its last load test, else
an LLM's default — over a real registry holding both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from doctor_context import MakeContext
from servewell.bootstrap import Services
from servewell.doctor.finding import Finding
from servewell.doctor.runner import run_checks
from servewell.registration.register import RegisterOptions, register_file
from servewell.registry.loadtests import LoadTestStore

ITEMS = ("timeouts and fallbacks", "monitoring: alert rules", "load testing")


def _register_chat(services: Services, tmp_path: Path, **spec: Any) -> None:
    """``chat`` v1: a remote ``openai`` model (never called: the doctor reads its spec)."""
    path = tmp_path / "chat.yaml"
    fields = {"kind": "openai", "url": "http://127.0.0.1:9/llm", "model": "gpt-upstream"}
    path.write_text(yaml.safe_dump(fields | spec), encoding="utf-8")
    register_file(
        services, path, "chat", format="remote", options=RegisterOptions(alias="production")
    )


def _fixes(findings: list[Finding], model: str) -> dict[str, str]:
    return {f.item: f.fix for f in findings if f.model == model and f.item in ITEMS}


@pytest.fixture
def chat(fraud: Services, tmp_path: Path) -> Services:
    _register_chat(fraud, tmp_path)
    return fraud


def test_a_local_model_keeps_the_millisecond_budget(
    chat: Services, make_context: MakeContext
) -> None:
    fixes = _fixes(run_checks(make_context()), "fraud")
    assert fixes["timeouts and fallbacks"] == (
        "models: {fraud: {timeout_ms: 200}} in servewell.yaml "
        "(200: the longest its callers should wait)"
    )
    assert "threshold: 200, window: 15m}]} in servewell.yaml" in fixes["monitoring: alert rules"]
    assert fixes["monitoring: alert rules"].endswith("in servewell.yaml")
    assert fixes["load testing"].endswith("--slo 'p99<50ms,errors<0.1%'")


def test_a_remote_chat_model_gets_an_llm_budget_saying_why(
    chat: Services, make_context: MakeContext
) -> None:
    fixes = _fixes(run_checks(make_context()), "chat")
    timeout = fixes["timeouts and fallbacks"]
    assert timeout.startswith("models: {chat: {timeout_ms: 60000}} in servewell.yaml (60000: ")
    assert "its upstream may take 32s (connect_s + read_s)" in timeout
    assert "a chat model's answers take seconds and stream, no less than 60s" in timeout
    alert = fixes["monitoring: alert rules"]
    assert "threshold: 30000, window: 15m}]} in servewell.yaml (30000 ms: half the 60s" in alert
    assert fixes["load testing"].endswith("--slo 'p99<30s,errors<0.1%'")


def test_a_long_upstream_timeout_lengthens_the_deadline(
    fraud: Services, make_context: MakeContext, tmp_path: Path
) -> None:
    _register_chat(fraud, tmp_path, timeouts={"connect_s": 2, "read_s": 118})
    fixes = _fixes(run_checks(make_context()), "chat")
    assert "{chat: {timeout_ms: 120000}}" in fixes["timeouts and fallbacks"]
    assert "its upstream may take 120s" in fixes["timeouts and fallbacks"]
    assert "threshold: 60000," in fixes["monitoring: alert rules"]


def test_a_passing_load_test_sets_the_budget_with_headroom(
    chat: Services, make_context: MakeContext
) -> None:
    steps = [{"latency_ms": {"p50": 900.0, "p99": 2500.0}}, {"latency_ms": {"p99": 4200.0}}]
    store = LoadTestStore(chat.registry)
    store.record("chat", 1, passed=True, slo="p99<30s", summary={"steps": steps})
    fixes = _fixes(run_checks(make_context()), "chat")
    assert fixes["timeouts and fallbacks"] == (
        "models: {chat: {timeout_ms: 13000}} in servewell.yaml "
        "(13000: 3x the p99 of its last load test, 4.2s)"
    )
    assert (
        "threshold: 7000, window: 15m}]} in servewell.yaml (7000 ms: 1.5x the p99"
        in (fixes["monitoring: alert rules"])
    )
    store.record("chat", 1, passed=False, slo="p99<1s", summary={"steps": steps})
    fixes = _fixes(run_checks(make_context()), "chat")  # a failed run's p99 is no guide
    assert "{chat: {timeout_ms: 60000}}" in fixes["timeouts and fallbacks"]
