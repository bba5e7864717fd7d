"""What the running server answers: a handful of GETs made once, before any check
reads them, so every check sees the same moment and no check waits on the network."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

#: Paths every server answers (open paths: no key needed).
OPEN_PATHS = ("/v2/health/live", "/v2/health/ready", "/metrics", "/openapi.json", "/docs")
#: Asked without a key: 401 says keys are on. The Origin shows what CORS answers.
MODELS_PATH = "/v1/models"
WITH_KEY = MODELS_PATH + " (with --api-key)"
PROBE_ORIGIN = "https://doctor.servewell.invalid"


@dataclass(frozen=True, slots=True)
class Answer:
    """One response, or why there was none (``status`` None)."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else f"no answer ({self.error})"


@dataclass(frozen=True, slots=True)
class LiveServer:
    """The answers of the server at ``url``, by path."""

    url: str
    answers: dict[str, Answer]
    api_key: str | None = None

    def answer(self, path: str) -> Answer:
        return self.answers.get(path, Answer(None, error="not asked"))

    @property
    def auth_on(self) -> bool:
        """A model listing refused without a key: keys are required."""
        return self.answer(MODELS_PATH).status == 401

    def served_models(self) -> dict[str, int] | None:
        """Model name -> version each bare name serves, from the listing (with the key
        when given); None when the listing could not be read."""
        listing = self.answer(WITH_KEY if self.api_key else MODELS_PATH)
        if not listing.ok:
            return None
        import json

        try:
            models = json.loads(listing.text)["models"]
            return {str(m["name"]): int(m.get("version") or 0) for m in models}
        except (ValueError, KeyError, TypeError):
            return None


def probe_server(url: str, api_key: str | None, timeout_s: float = 10.0) -> LiveServer:
    """GET the open paths and the model listing of the server at ``url``."""
    url = url.rstrip("/")
    answers: dict[str, Answer] = {}
    with httpx.Client(base_url=url, timeout=timeout_s) as client:
        for path in OPEN_PATHS:
            answers[path] = _get(client, path, {})
        answers[MODELS_PATH] = _get(client, MODELS_PATH, {"Origin": PROBE_ORIGIN})
        if api_key:
            headers = {"Authorization": f"Bearer {api_key}", "Origin": PROBE_ORIGIN}
            answers[WITH_KEY] = _get(client, MODELS_PATH, headers)
    return LiveServer(url, answers, api_key)


def _get(client: httpx.Client, path: str, headers: dict[str, str]) -> Answer:
    try:
        response = client.get(path, headers=headers)
    except httpx.HTTPError as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return Answer(None, error=reason)
    headers = {name.lower(): value for name, value in response.headers.items()}
    return Answer(response.status_code, headers, response.text)
