from __future__ import annotations

import json
import logging

from servewell.observability import JsonFormatter, RequestRecord, bind_request, unbind_request


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("servewell.test", logging.WARNING, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_line_carries_the_current_request() -> None:
    token = bind_request(RequestRecord("rid-1", "POST", "/x", model="iris", version="2"))
    try:
        line = json.loads(JsonFormatter().format(_record("slow model")))
    finally:
        unbind_request(token)
    assert line["message"] == "slow model"
    assert line["level"] == "warning"
    assert line["request_id"] == "rid-1"
    assert (line["model"], line["version"]) == ("iris", "2")
    assert line["time"].endswith("Z")


def test_outside_a_request_there_is_no_request_id() -> None:
    line = json.loads(JsonFormatter().format(_record("starting")))
    assert "request_id" not in line


def test_access_fields_become_the_line() -> None:
    line = json.loads(JsonFormatter().format(_record("access", fields={"status": 200})))
    assert line["status"] == 200
    assert "message" not in line
