"""The test harness itself: a server that does not start fails its test, with its log,
in bounded time (it used to wait forever on a server that never became ready)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from redis_server import free_port
from serving_models import wait_until_ready


def _fake_server(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_a_server_that_never_becomes_ready_fails_with_its_log() -> None:
    process = _fake_server("print('loading models', flush=True); import time; time.sleep(600)")
    with pytest.raises(RuntimeError, match="never ready after 1 s") as raised:
        wait_until_ready(f"http://127.0.0.1:{free_port()}", process, timeout_s=1)
    assert "loading models" in str(raised.value)
    assert process.poll() is not None  # killed, not left running


def test_a_server_that_exits_fails_with_its_log() -> None:
    process = _fake_server("import sys; print('error: no such model'); sys.exit(4)")
    with pytest.raises(RuntimeError, match="exited with 4") as raised:
        wait_until_ready(f"http://127.0.0.1:{free_port()}", process, timeout_s=30)
    assert "error: no such model" in str(raised.value)
