"""``ServewellServer`` in a thread of the test process, where the test can hold its event
loop still (the SIGTERM behaviour of whole ``servewell serve`` processes is tested in
``tests/e2e/test_shutdown.py``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from servewell.http import create_app
from servewell.http.protocol import ServewellHttpProtocol
from servewell.http.server import ServewellServer
from servewell.settings import AuthSettings, ServerSettings, Settings

ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture
def server(model_home: Path) -> Iterator[tuple[ServewellServer, socket.socket]]:
    """A started server on a listening socket of its own, serving iris."""
    settings = Settings(
        home=model_home, auth=AuthSettings(enabled=False), server=ServerSettings(models=["iris"])
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=ServewellHttpProtocol,
        lifespan="on",
        log_config=None,
        access_log=False,
    )
    listener = config.bind_socket()
    server = ServewellServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not (server.started and app.is_ready):
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start in 60 s"
        time.sleep(0.01)
    try:
        yield server, listener
    finally:
        server.should_exit = True
        thread.join(timeout=60)
    assert not thread.is_alive()


def test_connections_still_waiting_to_be_accepted_when_the_port_closes_are_answered(
    server: tuple[ServewellServer, socket.socket],
) -> None:
    """The event loop is held inside an I/O callback while clients connect and send
    their requests, so they wait in the kernel's accept queue; SIGTERM comes, and the
    server's next turn stops listening before it polls again. uvicorn closes the
    listening socket with them in it, which resets them; they must be answered."""
    running, listener = server
    loop = running.servers[0].get_loop()
    entered, release = threading.Event(), threading.Event()
    read_end, write_end = os.pipe()

    def hold() -> None:
        os.read(read_end, 1)
        entered.set()
        release.wait(30)

    loop.call_soon_threadsafe(loop.add_reader, read_end, hold)
    os.write(write_end, b"x")
    assert entered.wait(30)
    body = json.dumps({"instances": [ROW]}).encode()
    head = (
        "POST /v1/models/iris:predict HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    waiting = [socket.create_connection(listener.getsockname()[:2], timeout=30) for _ in range(5)]
    try:
        for connection in waiting:
            connection.sendall(head + body)
        running.handle_exit(signal.SIGTERM, None)
        time.sleep(0.2)  # past the server's 0.1 s tick: its next turn begins the shutdown
        release.set()
        answers = [_read_all(connection) for connection in waiting]
    finally:
        for connection in waiting:
            connection.close()
        os.close(read_end)
        os.close(write_end)
    assert [answer.split(b"\r\n", 1)[0] for answer in answers] == [b"HTTP/1.1 200 OK"] * 5
    assert all(b"\r\nconnection: close\r\n" in answer for answer in answers)


def _read_all(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    return data
