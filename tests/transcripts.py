"""Transcripts of HTTP exchanges: the same scripted requests sent to several ways of
serving one app, each answer reduced to what must not depend on the way (status, headers,
body), so that the transcripts can be compared as a whole and their differences shown.

Only what legitimately changes per run is normalised: ``date`` and ``server``, which
uvicorn adds to every answer and the in-process app to none, are dropped where they are
due (and show as ``<missing>`` where they are not), a request id the server generated
becomes ``<generated>``, and seconds until a rate-limit bucket refills (``Retry-After``,
``RateLimit-Reset``, the ``retry in N s`` of a 429's message) become ``<seconds>``."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families

#: What uvicorn adds to every answer (and the in-process app to none).
STAMPS = ("date", "server")
SECONDS = frozenset(("retry-after", "ratelimit-reset"))
#: Counts in ``/metrics`` that are not counters (a histogram's count) but must agree too.
COUNTED = frozenset(("servewell_request_duration_seconds_count",))
_RETRY_IN = re.compile(rb"retry in \d+ s")


class Client(Protocol):
    """httpx.Client, or the in-process client of ``serving_models``."""

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response: ...


@dataclass(frozen=True)
class Step:
    """One scripted request; ``status`` and ``cache`` (its ``x-cache``), when given, are
    what the reference system must answer, so a script cannot silently stop exercising
    what it is about (a hit that became a miss, a refusal that became a 200)."""

    label: str
    path: str
    method: str = "POST"
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    cache: str | None = None
    """``hit``, ``miss`` or ``absent`` (no ``x-cache`` at all)."""
    compare_body: bool = True
    """False for a body holding timings (``/metrics``); its counters are compared apart."""


@dataclass(frozen=True)
class Answer:
    label: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def lines(self) -> list[str]:
        """The answer as text, one fact a line, for a readable diff."""
        return [
            f"## {self.label}",
            f"status {self.status}",
            *(f"{name}: {value}" for name, value in self.headers),
            f"body {self.body!r}",
        ]


def record(client: Client, steps: Iterable[Step], stamped: bool) -> list[Answer]:
    """Send ``steps`` in order; their answers, normalised, then the metrics' counters.
    ``stamped``: the server is uvicorn, whose answers all carry ``date`` and ``server``."""
    answers = []
    for step in steps:
        response = client.request(
            step.method, step.path, json=step.json, content=step.content, headers=step.headers
        )
        answers.append(answer_to(step, response, stamped))
    answers.append(counters_of(client))
    return answers


def answer_to(step: Step, response: httpx.Response, stamped: bool) -> Answer:
    """The answer, normalised: see the module's docstring."""
    sent_id = next(
        (value for name, value in step.headers.items() if name.lower() == "x-request-id"), None
    )
    headers = [(name, "<missing>") for name in STAMPS if stamped and name not in response.headers]
    for name, value in response.headers.multi_items():
        if (name in STAMPS and stamped) or (name == "content-length" and not step.compare_body):
            continue
        if name in SECONDS and value.isdigit():
            value = "<seconds>"
        elif name == "x-request-id" and value != sent_id and value:
            value = "<generated>"
        headers.append((name, value))
    body = response.content if step.compare_body else b"<not compared>"
    if response.status_code == 429:
        body = _RETRY_IN.sub(b"retry in <seconds> s", body)
    return Answer(step.label, response.status_code, tuple(sorted(headers)), body)


#: Counters that move when a background flush runs (the prediction log writes every
#: ``monitoring.flush_interval_s``), not when a request is answered: not compared.
WRITTEN_WHEN_FLUSHED = frozenset({"servewell_predlog_written_total"})


def counters_of(client: Client) -> Answer:
    """servewell's counters (``*_total``, and how many request durations were observed)
    in ``/metrics``, one sample a line."""
    response = client.request("GET", "/metrics")
    lines = []
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name in WRITTEN_WHEN_FLUSHED:
                continue
            if sample.name in COUNTED or (
                sample.name.startswith("servewell_") and sample.name.endswith("_total")
            ):
                labels = ",".join(
                    f'{name}="{value}"' for name, value in sorted(sample.labels.items())
                )
                lines.append(f"{sample.name}{{{labels}}} {sample.value:g}")
    return Answer("metrics counters", response.status_code, (), "\n".join(sorted(lines)).encode())


def assert_same(transcripts: Mapping[str, list[Answer]]) -> None:
    """Every transcript equals the first one; else an AssertionError with the diff of
    each that does not."""
    (reference_name, reference), *others = transcripts.items()
    expected = _text(reference)
    diffs = []
    for name, transcript in others:
        if transcript != reference:
            diff = difflib.unified_diff(
                expected, _text(transcript), reference_name, name, n=4, lineterm=""
            )
            diffs.append("\n".join(diff))
    assert not diffs, "the systems answered differently:\n" + "\n\n".join(diffs)


def _text(transcript: list[Answer]) -> list[str]:
    lines = []
    for answer in transcript:
        lines.extend(answer.lines())
        if answer.label == "metrics counters":
            lines[-1:] = answer.body.decode().splitlines()
    return lines


def check_expectations(steps: list[Step], answers: list[Answer]) -> None:
    """The statuses and cache outcomes the steps expect, in one assertion."""
    wanted = [(step.label, step.status, step.cache) for step in steps]
    got = [
        (
            step.label,
            answer.status if step.status is not None else None,
            (answer.header("x-cache") or "absent") if step.cache is not None else None,
        )
        for step, answer in zip(steps, answers, strict=False)
    ]
    assert got == wanted


def counter(counters: Answer, sample: str) -> float:
    """One sample's value in the counters ``record`` ends a transcript with (0 if none)."""
    for line in counters.body.decode().splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0
