"""The rate-limit metric's ``caller`` label is bounded: callers without a key are one
``anonymous`` series, however many addresses they call from."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from servewell.http import create_app
from servewell.settings import AuthSettings, ServerSettings, Settings
from serving_models import serve_in_process


def test_many_client_addresses_make_one_anonymous_series(model_home: Path) -> None:
    settings = Settings(
        home=model_home,
        auth=AuthSettings(enabled=False),  # every call is limited per client address
        server=ServerSettings(models=["iris"]),
    )
    app = create_app(settings)
    addresses = [f"10.0.{index // 250}.{index % 250 + 1}" for index in range(300)]

    async def call_from_everywhere() -> list[int]:
        statuses = []
        for address in addresses:
            transport = httpx.ASGITransport(app=app, client=(address, 40_000))
            async with httpx.AsyncClient(transport=transport, base_url="http://sw") as http:
                statuses.append((await http.get("/v2/health/ready")).status_code)
        return statuses

    with serve_in_process(app) as client:
        assert client.portal.call(call_from_everywhere) == [200] * len(addresses)
        text = client.get("/metrics").text
    (family,) = (
        family
        for family in text_string_to_metric_families(text)
        if family.name == "servewell_rate_limit_decisions"
    )
    totals = {
        tuple(sorted(sample.labels.items())): sample.value
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    # The /metrics call itself is the one more allowed anonymous decision.
    assert totals == {(("caller", "anonymous"), ("outcome", "allowed")): len(addresses) + 1}
    assert "10.0." not in text
