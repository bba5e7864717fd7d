"""The dashboard's Live data: the server's recent traffic per model version, from its
own metrics (``observability/live.py``), as the JSON the Live page polls."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from servewell.http.running import RunningServer
from servewell.observability.metrics import is_multiprocess


def live_data(server: RunningServer, model: str | None = None) -> dict[str, Any]:
    """Every served version's points over the ring's window (``model``'s alone when
    given), oldest first; ``workers`` says whether the figures add up every worker's
    (``--workers N``: read from the files ``/metrics`` merges) or this process's."""
    ring = server.live
    return {
        "interval_s": ring.interval_s,
        "window_s": ring.window_s,
        "workers": "all" if is_multiprocess() else "this process",
        "series": [asdict(series) for series in ring.series(model)],
    }
