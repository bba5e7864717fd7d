"""Start tests/upstreams/scripted_openai.py as a real process on a loopback port."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SCRIPT = Path(__file__).parent / "upstreams" / "scripted_openai.py"


@dataclass(frozen=True)
class ScriptedUpstream:
    url: str
    """``http://127.0.0.1:PORT``, no trailing slash."""

    def script(self, steps: list[dict[str, Any]], default: dict[str, Any] | None = None) -> None:
        """Play ``steps`` to the next requests, then ``default``; forget what was received."""
        body = {"steps": steps, "default": default or {}}
        httpx.put(f"{self.url}/_script", content=json.dumps(body)).raise_for_status()
        httpx.delete(f"{self.url}/_received").raise_for_status()

    def received(self) -> list[dict[str, Any]]:
        requests: list[dict[str, Any]] = httpx.get(f"{self.url}/_received").json()["requests"]
        return requests


@contextmanager
def scripted_upstream(*args: str) -> Iterator[ScriptedUpstream]:
    """The upstream process with ``args`` (``--latency-ms 50`` ...), stopped on exit."""
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the scripted upstream did not start: {line!r}")
        yield ScriptedUpstream(line.removeprefix("listening on ").strip())
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
