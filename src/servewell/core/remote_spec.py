"""A remote model's spec: where its upstream is and how to call it (a small YAML file).

``servewell register upstream.yaml --format remote`` stores this file as the version's
artifact; the server reads it back to call the upstream. It never holds a secret: the
credential is read, at load time, from the environment variable ``credential_env``
names, and a spec with a field that looks like a literal secret is refused::

    kind: v2                      # v2 (Open Inference Protocol) or openai (chat completions)
    url: http://triton:8000       # the upstream's base URL (openai: up to, not with, /v1)
    model: iris                   # the upstream's own model name
    version: "2"                  # v2 only, optional: a version the upstream serves
    credential_env: IRIS_TOKEN    # optional: sent as "Authorization: Bearer <value>"
    timeouts: {connect_s: 2, read_s: 30}
    retries: 2                    # more attempts after a failed one
    backoff: {first_s: 0.1, max_s: 2}
    prices: {input_per_1k: 0.0005, output_per_1k: 0.0015}   # USD; default 0 (free)
    max_connections: 64
    max_response_bytes: 16777216  # the most of one answer (or stream) read: 16 MiB

``prices`` is optional for every kind (a self-hosted vLLM or Ollama costs nothing); a
``v2`` model has no tokens, so its prices are unused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from servewell.errors import InvalidInput
from servewell.settings.section import error_message

#: Field names that hold a secret: refused with a message pointing at credential_env.
SECRET_FIELDS = re.compile(
    r"(api[_-]?key|apikey|secret|password|passwd|token|bearer|authorization|auth|"
    r"credential(?!_env$)|access[_-]?key|private[_-]?key)",
    re.IGNORECASE,
)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_SPEC_BYTES = 64 * 1024


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_s: float = Field(2.0, gt=0, le=300)
    """The longest a new connection to the upstream may take (never past the deadline)."""
    read_s: float = Field(30.0, gt=0, le=3600)
    """The longest the upstream may stay silent while answering (never past the deadline)."""


class Backoff(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    first_s: float = Field(0.1, gt=0, le=60)
    """The bound of the first retry's wait (drawn from zero to it: full jitter)."""
    max_s: float = Field(2.0, gt=0, le=300)
    """No wait is longer, except what an upstream's ``Retry-After`` asks for."""


class Prices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_1k: float = Field(0.0, ge=0)
    """USD per 1000 prompt tokens."""
    output_per_1k: float = Field(0.0, ge=0)
    """USD per 1000 completion tokens."""


class RemoteSpec(BaseModel):
    """A remote model: its upstream, the upstream's model, and how to call it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["v2", "openai"]
    url: str = Field(min_length=1, max_length=2048)
    model: str = Field(min_length=1, max_length=256)
    version: str | None = Field(None, min_length=1, max_length=64)
    credential_env: str | None = None
    timeouts: Timeouts = Timeouts()
    retries: int = Field(2, ge=0, le=10)
    backoff: Backoff = Backoff()
    prices: Prices = Prices()
    max_connections: int = Field(64, ge=1, le=4096)
    max_response_bytes: int = Field(16 * 2**20, ge=1024, le=2**30)
    """The most of one answer (a whole stream included) read from the upstream."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url: an http:// or https:// URL with a host, not {self.url!r}")
        if parts.username or parts.password:
            raise ValueError(
                "url: holds a user or password; name an environment variable in "
                "credential_env instead"
            )
        if self.kind == "openai" and parts.path.rstrip("/").endswith("/v1"):
            base = self.url.rstrip("/").removesuffix("/v1")
            raise ValueError(
                f"url: the upstream's address up to, not with, /v1 (servewell adds "
                f"/v1/chat/completions): {base!r}, not {self.url!r}"
            )
        if self.credential_env is not None and not ENV_NAME.fullmatch(self.credential_env):
            raise ValueError(
                "credential_env: the NAME of an environment variable (letters, digits, _), "
                "not the credential itself"
            )
        if self.version is not None and self.kind != "v2":
            raise ValueError("version: only a v2 upstream has model versions")
        return self

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    @property
    def v2_model_path(self) -> str:
        """``/v2/models/{model}[/versions/{version}]`` (quoted): a v2 model's metadata."""
        path = f"/v2/models/{quote(self.model, safe='')}"
        if self.version is None:
            return path
        return f"{path}/versions/{quote(self.version, safe='')}"

    def to_yaml(self) -> str:
        import yaml

        return str(yaml.safe_dump(self.model_dump(exclude_none=True), sort_keys=False))


def parse_remote_spec(text: str, source: str = "the remote spec") -> RemoteSpec:
    """The spec in ``text`` (YAML), or InvalidInput naming ``source`` and the field."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise InvalidInput(f"{source} is not valid YAML{line}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{source} must be a YAML mapping (kind, url, model, ...)")
    secret = _secret_field(data)
    if secret is not None:
        raise InvalidInput(
            f"{source}: field '{secret}' looks like a secret; a spec never holds one: put "
            "it in an environment variable and name that variable in credential_env"
        )
    try:
        return RemoteSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = error_message(error)
        if error["type"] == "value_error":  # our own checks name their field already
            raise InvalidInput(f"{source}: {message.removeprefix('Value error, ')}") from None
        raise InvalidInput(f"{source}: {where}: {message}" if where else message) from None


def read_remote_spec(path: Path) -> RemoteSpec:
    """The spec file at ``path`` (InvalidInput naming it when unreadable or wrong)."""
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise InvalidInput(f"{path} is {size} bytes; a remote spec is at most 64 KiB")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
    return parse_remote_spec(text, str(path))


def _secret_field(data: Any, prefix: str = "") -> str | None:
    """The first key (dotted path) at any depth whose name says it holds a secret."""
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}{key}"
            if isinstance(key, str) and SECRET_FIELDS.search(key) and key != "credential_env":
                return name
            found = _secret_field(value, f"{name}.")
            if found is not None:
                return found
    return None
