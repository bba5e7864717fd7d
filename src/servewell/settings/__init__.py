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

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from servewell.settings.chat import ChatSettings
from servewell.settings.jobs import JobsSettings
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
from servewell.settings.monitoring import MonitoringSettings
from servewell.settings.section import Section, error_message
from servewell.settings.server import ServerSettings
from servewell.settings.sources import CheckedEnvironment, CheckedYaml, describe_unknown
from servewell.settings.traffic import DeclaredShadow, DeclaredTraffic

__all__ = [
    "AuthSettings",
    "BatchingOverrides",
    "BatchingSettings",
    "CacheSettings",
    "DeclaredShadow",
    "DeclaredTraffic",
    "JobsSettings",
    "ModelCacheSettings",
    "ModelSettings",
    "MonitoringSettings",
    "OutputFilterSettings",
    "RateLimitSettings",
    "ResolvedCacheSettings",
    "ResolvedModelSettings",
    "RuntimeSettings",
    "ServerSettings",
    "Settings",
    "ValidationSettings",
    "canonical_name",
    "config_path",
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
    stale_ttl_s: float = Field(default=86_400.0, gt=0)
    """How long an expired answer is kept for the ``cache`` fallback (stale-if-error),
    from when it was stored; only for models with ``cache`` in their ``fallbacks``.
    In process, stale answers share ``max_bytes`` with fresh ones; in Redis, each is a
    second copy under its own key."""
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
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    """The prediction log, drift and quality windows, alert rules and their webhooks."""
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    """The OpenAI-compatible endpoint's limits (``settings/chat.py``)."""
    """Batch prediction jobs: executor, threads, chunk size, upload limit, retention."""
    models: dict[str, ModelSettings] = Field(default_factory=dict)
    """Per model name, what differs from the defaults for that model (names match
    ignoring case, with ``-``, ``.`` and ``_`` alike). Not ``server.models``, which says
    which models to serve."""
    traffic: dict[str, DeclaredTraffic] = Field(default_factory=dict)
    """Per model name (as registered), a traffic policy: a split, a shadow, and whether
    this file or the registry (``servewell traffic``) has the last word
    (``settings/traffic.py``)."""
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
            CheckedYaml(settings_cls, yaml_file=config_path()),
        )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once, at the edge (a CLI command, a server factory, a worker);
    a wrong value or key, in the environment or the YAML file, is one InvalidConfig."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from servewell.errors import InvalidConfig

    _check_config_file(config_path())
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
            problem = f"{'.'.join(loc) or 'settings'}: {error_message(error)}"
        raise InvalidConfig(
            f"invalid settings (environment or {config_path()}): {problem}"
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


def config_path() -> Path:
    """The settings file read: ``SERVEWELL_CONFIG``, else ``servewell.yaml`` here."""
    return Path(os.environ.get("SERVEWELL_CONFIG", "servewell.yaml"))
