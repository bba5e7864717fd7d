"""The running server keeps its own recent traffic (``RunningServer.live``)."""

from __future__ import annotations

import time
from pathlib import Path

from servewell.http import create_app
from servewell.settings import AuthSettings, CacheSettings, ServerSettings, Settings
from serving_models import serve_in_process

ROW = [5.1, 3.5, 1.4, 0.2]


def test_the_server_samples_its_own_traffic(model_home: Path) -> None:
    settings = Settings(
        home=model_home,
        auth=AuthSettings(enabled=False),
        cache=CacheSettings(enabled=True),
        server=ServerSettings(models=["iris"]),
    )
    app = create_app(settings)
    with serve_in_process(app) as client:
        ring = app.running.live
        deadline = time.monotonic() + 30
        while not ring.snapshots:  # the ring reads on its own once started
            assert time.monotonic() < deadline, "the live ring took no reading"
            time.sleep(0.05)
        client.run(ring.take)
        for _ in range(5):
            assert client.post("/v1/models/iris:predict", json={"instances": [ROW]}).is_success
        assert (
            client.post("/v1/models/iris:predict", json={"instances": [[1.0]]}).status_code == 400
        )
        client.run(ring.take)
        (series,) = ring.series("iris")
        last = series.points[-1]
        assert series.version == "1"
        assert last.requests_per_s > 0
        assert last.errors_by_status.keys() == {"400"}
        assert last.p50_s is not None
        assert last.cache_hit_ratio is not None
        assert last.cache_hit_ratio > 0
        assert last.breaker == "closed"
