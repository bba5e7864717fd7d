"""The ways of serving one app that must answer alike: in process (httpx's ASGI
transport, no HTTP server), stock uvicorn, and uvicorn with servewell's protocol
(``http.protocol``: cache hits, and the guard's refusals of them, answered before the
ASGI app) with ``server.fast_lane`` on and off. ``same_everywhere`` sends a script to each
and compares their transcripts (``transcripts``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import NamedTuple

import httpx

from servewell.http import create_app
from servewell.http.protocol import ServewellHttpProtocol
from servewell.settings import Settings
from serving_models import serve_in_process, serve_in_thread
from transcripts import Answer, Client, Step, assert_same, check_expectations, record


class System(NamedTuple):
    """uvicorn's ``http`` option (None: in process, no uvicorn) and ``server.fast_lane``."""

    http: object
    fast_lane: bool


#: The first is the reference the others are compared with.
SYSTEMS = {
    "asgi": System(None, fast_lane=True),
    "uvicorn": System("httptools", fast_lane=True),
    "lane": System(ServewellHttpProtocol, fast_lane=True),
    "lane-off": System(ServewellHttpProtocol, fast_lane=False),
}

Systems = dict[str, Client]


@contextmanager
def serve_everywhere(settings: Callable[[bool], Settings]) -> Iterator[Systems]:
    """Every system, each with a fresh app (its own cache and buckets) built from
    ``settings(fast_lane)``, and a client for each, until the block ends."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(_serve(system, settings(system.fast_lane)))
            for name, system in SYSTEMS.items()
        }


@contextmanager
def _serve(system: System, settings: Settings) -> Iterator[Client]:
    app = create_app(settings)
    if system.http is None:
        with serve_in_process(app) as in_process:
            yield in_process
        return
    with (
        serve_in_thread(app, http=system.http, timeout_keep_alive=60) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client


def same_everywhere(systems: Systems, steps: list[Step]) -> list[Answer]:
    """Send ``steps`` to every system; their transcripts must be equal, and the
    reference's answers what the steps expect. The reference's transcript."""
    transcripts = {
        name: record(client, steps, stamped=SYSTEMS[name].http is not None)
        for name, client in systems.items()
    }
    assert_same(transcripts)
    reference = next(iter(transcripts.values()))
    check_expectations(steps, reference)
    return reference
