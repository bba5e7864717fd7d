"""servewell's configuration: one Settings object, built once at the edge and passed down.

Sources, strongest first: keyword arguments, environment (``SERVEWELL_*``, nested
sections with ``__``: ``SERVEWELL_RUNTIME__INTRA_OP_THREADS=2``), the YAML file
(``servewell.yaml`` in the working directory, or the path in ``SERVEWELL_CONFIG``),
then the defaults below. A key that names no setting, in the file or as a
``SERVEWELL_*`` variable, is refused (``sources``).

Per-model values live in one section, ``models: {<name>: ModelSettings}``, read through
one accessor, :meth:`Settings.model`. The old spellings (``server.model_batching``,
``cache.models``, ``output_filters``) still work for one release, with a deprecation
line each; where both spellings give a model's field, ``models`` wins.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from servewell.settings.models import (
    BatchingOverrides,
    BatchingSettings,
    ModelCacheSettings,
    ModelSettings,
    OutputFilterSettings,
    ResolvedCacheSettings,
    ResolvedModelSettings,
    by_canonical_name,
    canonical_name,
    resolve,
    with_deprecated,
)
from servewell.settings.section import Section
from servewell.settings.sources import CheckedEnvironment, CheckedYaml, describe_unknown

__all__ = [
    "AuthSettings",
    "BatchingOverrides",
    "BatchingSettings",
    "CacheSettings",
    "ModelCacheSettings",
    "ModelSettings",
    "OutputFilterSettings",
    "RateLimitSettings",
    "ResolvedCacheSettings",
    "ResolvedModelSettings",
    "RuntimeSettings",
    "ServerSettings",
    "Settings",
    "ValidationSettings",
    "canonical_name",
    "load_settings",
]


class RuntimeSettings(Section):
    """How models run."""

    intra_op_threads: int = Field(default=0, ge=0)
    """ONNX Runtime threads inside one operator; 0 lets ONNX Runtime choose."""
    inter_op_threads: int = Field(default=1, ge=0)
    """ONNX Runtime threads across operators (parallel execution only)."""
    spin_threads: bool = False
    """Let ONNX Runtime's idle pool threads spin waiting for work: lower latency for a
    model that is always busy, but each spinning thread holds a core the server and the
    other models need (measured: plain REST 14k -> 17k req/s on 2 cores with it off)."""
    graph_optimization: Literal["disabled", "basic", "extended", "all"] = "all"
    """ONNX Runtime graph optimization level."""
    prefer_onnx: bool = True
    """Serve a version's ONNX conversion instead of its pickle when it has one."""


class ValidationSettings(Section):
    """Limits every request is held to, whatever the model."""

    max_rows: int = Field(default=10_000, ge=1)
    """Most rows (batch size) in one request."""
    max_text_bytes: int = Field(default=100_000, ge=1)
    """Longest text item, in UTF-8 bytes."""
    max_json_depth: int = Field(default=64, ge=1)
    """Deepest nesting of arrays and objects in a JSON request body."""


class ServerSettings(Section):
    """The HTTP inference server (``servewell serve``)."""

    host: str = "127.0.0.1"
    """Interface to listen on."""
    port: int = Field(default=8000, ge=0, le=65535)
    """TCP port to listen on."""
    workers: int = Field(default=1, ge=1)
    """Server processes sharing the port."""
    models: list[str] = Field(default_factory=list)
    """Model references to serve (``name``, ``name@2``, ``name@staging``); empty serves
    every registered model's production alias, else its latest version."""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    """Largest request body; larger ones get 413."""
    max_receiving_body_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    """The request bodies one server process holds while they arrive, all together: a
    piece that would pass it gets 503 with ``Retry-After`` (many slow uploads at once
    would otherwise hold ``max_connections`` x ``max_body_bytes``). At least one body of
    ``max_body_bytes`` always fits."""
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    """Largest request line plus headers, counted as they arrive; larger ones get 431
    and the connection is closed. 64 KiB is nginx's whole header budget twice over
    (4 x 8 KiB): room for big cookies and tokens, while a client cannot make a worker
    buffer megabytes of headers."""
    header_timeout_s: float = Field(default=10.0, gt=0)
    """How long a request's headers may take to arrive, from the connection's opening
    (its first request) or the request's first byte (later ones). Past it the client
    gets 408 and the connection is closed; a new connection that sends nothing is just
    closed. 10 s is far above any honest client and keeps slow-header clients from
    holding connections for long."""
    body_timeout_s: float = Field(default=30.0, gt=0)
    """Longest wait between two pieces of a request body (not for the whole body: a
    large upload that keeps moving is fine). Past it the client gets 408 and the
    connection is closed, and an inference waiting for that body ends as a 408 too.
    Not counted while the server itself is not reading (it is busy with the body so far,
    or owes the client a 100 Continue)."""
    min_body_rate_bytes_s: int = Field(default=500, ge=0)
    """Once a body has been arriving for ``body_timeout_s``, it must average at least
    this many bytes a second, or the client gets 408: a body trickled just under the
    pause limit would otherwise hold its connection (and its buffer) for as long as the
    client likes. 0: no minimum rate. (Apache's mod_reqtimeout has the same default.)"""
    max_connections: int = Field(default=4096, ge=1)
    """Open connections per server process (``--workers N``: each worker has this many).
    One past it is answered 503 with ``Retry-After`` and closed. 4096 is what one worker
    serves comfortably with keep-alive; the process's open-file limit lowers it when it
    has to (half of ``ulimit -n``, less a reserve, as refused connections also hold a
    file for a moment), so that the limit is a clear 503 and never a failing accept."""
    access_log: bool = True
    """Write one JSON line per request to stdout."""
    shutdown_delay_s: float = Field(default=0.0, ge=0)
    """On SIGTERM, how long to go on accepting and serving (readiness already false)
    before the port closes, so load balancers stop sending first (Kubernetes: a few
    seconds)."""
    drain_timeout_s: float = Field(default=30.0, gt=0)
    """After the port closes, how long the requests already received may take to be
    answered; those still waiting then get 503 (``shutting_down``)."""
    retry_after_s: int = Field(default=1, ge=0)
    """``Retry-After`` sent with a 503 when a queue is full."""
    fast_lane: bool = True
    """Answer response-cache hits inside the HTTP protocol, before the ASGI app (only
    with the in-process cache and rate limiter). Off, every request takes the ASGI path;
    answers are the same either way."""
    load_before_serving: bool = False
    """Finish loading models before accepting connections. ``servewell serve --workers N``
    turns it on: workers share one port, so a worker still loading would answer 503 while
    its siblings are ready. With one process, liveness answers at once instead."""
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Proxies whose ``X-Forwarded-For``/``X-Forwarded-Proto`` are believed: addresses,
    networks (``10.0.0.0/8``) or ``*`` (any); a list, or one comma-separated string. Empty
    (the default): the headers are ignored and the client is the socket's peer, so
    nobody can pick the address the access log, rate limits and lockouts see."""
    worker_start_timeout_s: int = Field(default=120, ge=1)
    """With ``--workers N``: how long a worker may take to import, load and warm up its
    models before the supervisor gives up on it and starts another (uvicorn's worker
    health check, 5 s by default, killed workers still importing on a loaded machine)."""
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    """Batching defaults for every model (``models.<name>.batching`` changes them for one)."""
    model_batching: dict[str, BatchingOverrides] = Field(default_factory=dict)
    """Deprecated: ``models.<name>.batching``. Read through ``Settings.model``."""

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _read_addresses(cls, value: Any) -> Any:
        """A JSON list or a comma-separated string (the environment's ways) as a list."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            _check_trusted_address(entry)
        return value


class AuthSettings(Section):
    """Who may call: API keys, on by default."""

    enabled: bool = True
    """Require an API key (``Authorization: Bearer`` or ``X-API-Key``) on model routes."""
    open_paths: list[str] = Field(
        default_factory=lambda: [
            "/health",
            "/v2/health/live",
            "/v2/health/ready",
            "/metrics",
            "/docs",
            "/openapi.json",
        ]
    )
    """Paths anyone may call without a key: probes, scraping, and the API's own docs
    (a browser cannot add a key header; they list routes, not models)."""
    refresh_interval_s: float = Field(default=0.5, gt=0, le=1.0)
    """How often each worker re-reads the key table: revocations apply within this."""
    failed_attempts_rate: str | None = "30/minute"
    """Failed authentications (401s) allowed per client address; past it the address is
    locked out (429 with ``Retry-After``, no key it sends is checked, a valid one
    neither) until its budget refills. Kept where the rate limits are (Redis: shared by
    replicas). Null: never locked out."""


class RateLimitSettings(Section):
    """Token buckets per key (and per client IP for calls without a key)."""

    enabled: bool = True
    """Limit calls at all."""
    backend: Literal["auto", "memory", "redis"] = "auto"
    """``memory``: one budget per worker; ``redis``: one shared by every worker and
    replica; ``auto``: ``redis`` when ``redis_url`` is set, else ``memory``."""
    default_rate: str = "6000/minute"
    """A key's limit unless the key has its own (``servewell keys create --rate``)."""
    anonymous_rate: str | None = "6000/minute"
    """Per client IP, for calls without a key (open paths, ``--no-auth``); null: none."""
    model_rates: dict[str, str] = Field(default_factory=dict)
    """Extra per-model limit each key gets on that model, e.g. ``{"big-model": "10/second"}``."""
    failure_policy: Literal["fail_open", "fail_closed"] = "fail_open"
    """When Redis is unreachable: allow (warn and count) or refuse with 503."""
    redis_timeout_s: float = Field(default=0.25, gt=0)
    """Longest a call to Redis may take before the failure policy decides."""


class CacheSettings(Section):
    """Response cache keyed by resolved version + request bytes (see serving/response_cache)."""

    enabled: bool = True
    """Cache answers at all; off, ``models.<name>.cache.enabled`` cannot turn it on."""
    backend: Literal["auto", "memory", "redis"] = "auto"
    """``memory``: one cache per worker; ``redis``: one shared by every worker and
    replica; ``auto``: ``redis`` when ``redis_url`` is set, else ``memory``."""
    ttl_s: float = Field(default=300.0, gt=0)
    """How long an answer is kept, unless ``models.<name>.cache.ttl_s`` says otherwise."""
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    """In-process budget (the memory backend)."""
    models: dict[str, ModelCacheSettings] = Field(default_factory=dict)
    """Deprecated: ``models.<name>.cache``. Read through ``Settings.model``."""


class Settings(BaseSettings):
    """Everything servewell can be told."""

    model_config = SettingsConfigDict(
        env_prefix="SERVEWELL_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    home: Path = Field(default_factory=lambda: Path.home() / ".servewell")
    """Folder of the embedded state: the SQLite database and the artifact store."""
    database_url: str | None = None
    """SQLAlchemy URL of the registry database; unset means SQLite in ``home``."""
    artifacts_dir: Path | None = None
    """Folder of the artifact store; unset means ``home/artifacts``."""
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    redis_url: str | None = None
    """Redis for shared rate limits and cache across workers and replicas."""
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    models: dict[str, ModelSettings] = Field(default_factory=dict)
    """Per model name, what differs from the defaults for that model (names match
    ignoring case, with ``-``, ``.`` and ``_`` alike). Not ``server.models``, which says
    which models to serve."""
    output_filters: dict[str, OutputFilterSettings] = Field(default_factory=dict)
    """Deprecated: ``models.<name>.output_filters``. Read through ``Settings.model``."""

    _resolved: dict[str, ResolvedModelSettings] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _merge_old_spellings(self) -> Settings:
        self.models = with_deprecated(
            by_canonical_name(self.models, "models"),
            {
                "batching": ("server.model_batching", self.server.model_batching),
                "cache": ("cache.models", self.cache.models),
                "output_filters": ("output_filters", self.output_filters),
            },
        )
        return self

    def model(self, name: str) -> ResolvedModelSettings:
        """What model ``name`` runs with: ``models.<name>`` over the defaults. The one
        way serving code reads a per-model setting (settings are not changed once built,
        so the answer is kept)."""
        resolved = self._resolved.get(name)
        if resolved is None:
            resolved = resolve(
                name,
                self.models.get(canonical_name(name)),
                self.server.batching,
                self.cache.enabled,
                self.cache.ttl_s,
            )
            if len(self._resolved) >= 1024:  # names come from served models: a few
                self._resolved.clear()
            self._resolved[name] = resolved
        return resolved

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy resolves its models afresh (``update`` may change their defaults)."""
        copy = super().model_copy(update=update, deep=deep)
        copy._resolved = {}
        return copy

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'registry.db'}"

    @property
    def resolved_artifacts_dir(self) -> Path:
        return self.artifacts_dir or self.home / "artifacts"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            CheckedEnvironment(settings_cls),
            CheckedYaml(settings_cls, yaml_file=_config_path()),
        )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once, at the edge (a CLI command, a server factory, a worker);
    a wrong value or key, in the environment or the YAML file, is one InvalidConfig."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from servewell.errors import InvalidConfig

    _check_config_file(_config_path())
    try:
        return Settings(**overrides)
    except SettingsError as exc:  # e.g. SERVEWELL_SERVER='{' (a section given as JSON)
        raise InvalidConfig(f"invalid settings (environment): {exc}") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"]]
        if error["type"] == "extra_forbidden":
            problem = describe_unknown(Settings, loc)
        else:
            problem = f"{'.'.join(loc) or 'settings'}: {error['msg']}"
        raise InvalidConfig(
            f"invalid settings (environment or {_config_path()}): {problem}"
        ) from None


def _check_config_file(path: Path) -> None:
    """The settings file, if there is one, is UTF-8 YAML holding a mapping."""
    import yaml

    from servewell.errors import InvalidConfig

    if not path.is_file():
        return
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InvalidConfig(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise InvalidConfig(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise InvalidConfig(f"{path} is not valid YAML: {reason}") from None
    if data is not None and not isinstance(data, dict):
        raise InvalidConfig(f"{path} must be a mapping of setting names to values")


def _check_trusted_address(entry: str) -> None:
    """An entry of ``server.forwarded_allow_ips``: ``*``, an address or a network."""
    if entry == "*":
        return
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not an IP address, a network (10.0.0.0/8) or '*'") from None


def _config_path() -> Path:
    return Path(os.environ.get("SERVEWELL_CONFIG", "servewell.yaml"))
