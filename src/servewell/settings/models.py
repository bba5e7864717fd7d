"""Per-model settings: the ``models:`` section, and what one model resolves to.

``models.<name>`` holds only what differs for that model; :meth:`Settings.model` merges
it over the defaults (``server.batching``, ``cache.*``) into one
:class:`ResolvedModelSettings`, the only form the serving code reads.

Names are matched ignoring case, with ``-``, ``.`` and ``_`` alike
(:func:`canonical_name`): environment variable names are case-insensitive and a shell
cannot export one holding ``-`` or ``.``, so
``SERVEWELL_MODELS__BIG_MODEL__CACHE__ENABLED=false`` applies to a model named
``Big-Model``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Literal, TypeVar

from pydantic import Field

from servewell.settings.monitoring import ModelMonitoringSettings
from servewell.settings.resilience import ResilienceSettings
from servewell.settings.section import Section

logger = logging.getLogger(__name__)


class BatchingSettings(Section):
    """How one deployment (model version) coalesces concurrent requests."""

    enabled: bool = True
    """Coalesce concurrent requests into one model call; off runs each request alone."""
    max_batch_size: int = Field(default=64, ge=1)
    """Most rows in one model call (a single larger request still runs, alone)."""
    max_batch_delay_ms: float = Field(default=2.0, ge=0)
    """Longest a batch waits for more requests, and only while more keep arriving."""
    max_queue_size: int = Field(default=512, ge=1)
    """Requests waiting for the model beyond this are shed with 503 and Retry-After."""
    inline_below_ms: float = Field(default=0.5, ge=0)
    """Run a model on the event loop when a full batch takes less than this (measured
    at warm-up); slower models run on a worker thread. 0 always uses the thread."""

    def capped(self, max_batch_size: int | None) -> BatchingSettings:
        """These settings with no more than ``max_batch_size`` rows in one call (a
        model's own limit, from its signature's ``max_batch_size``)."""
        if max_batch_size is None or max_batch_size >= self.max_batch_size:
            return self
        return self.model_copy(update={"max_batch_size": max_batch_size})


class BatchingOverrides(Section):
    """Per-model changes to the batching defaults; unset fields keep the default."""

    enabled: bool | None = None
    """Over ``server.batching.enabled``."""
    max_batch_size: int | None = Field(default=None, ge=1)
    """Over ``server.batching.max_batch_size``."""
    max_batch_delay_ms: float | None = Field(default=None, ge=0)
    """Over ``server.batching.max_batch_delay_ms``."""
    max_queue_size: int | None = Field(default=None, ge=1)
    """Over ``server.batching.max_queue_size``."""
    inline_below_ms: float | None = Field(default=None, ge=0)
    """Over ``server.batching.inline_below_ms``."""


class ModelCacheSettings(Section):
    """Per-model changes to the response cache; unset fields keep ``cache.*``."""

    enabled: bool | None = None
    """False for a model whose answers vary for the same input (sampling, time);
    ``cache.enabled: false`` turns the cache off for every model whatever this says."""
    ttl_s: float | None = Field(default=None, gt=0)
    """Over ``cache.ttl_s``."""


class OutputFilterSettings(Section):
    """Personal data in a model's text outputs."""

    kinds: list[Literal["ssn", "card", "email", "phone"]] = Field(
        default_factory=lambda: ["ssn", "card", "email", "phone"]  # type: ignore[arg-type]
    )
    """Which detectors run."""
    policy: Literal["redact", "block"] = "redact"
    """``redact``: replace what was found; ``block``: withhold the whole item."""


class ModelSettings(ResilienceSettings):
    """One model's settings (``models.<name>``); whatever is left out keeps the default.
    Its deadline, isolation, retries, breaker and fallbacks are
    :class:`~servewell.settings.resilience.ResilienceSettings`' fields."""

    batching: BatchingOverrides = Field(default_factory=BatchingOverrides)
    """Batching changes over ``server.batching``."""
    cache: ModelCacheSettings = Field(default_factory=ModelCacheSettings)
    """Response-cache changes over ``cache.enabled`` and ``cache.ttl_s``."""
    output_filters: OutputFilterSettings | None = None
    """Personal-data filters on the model's text outputs; unset, none run."""
    monitoring: ModelMonitoringSettings = Field(default_factory=ModelMonitoringSettings)
    """What the prediction log keeps of this model (sample rate, inputs)."""


@dataclass(frozen=True)
class ResolvedCacheSettings:
    """Whether one model's answers are cached, and for how long."""

    enabled: bool
    ttl_s: float


@dataclass(frozen=True)
class ResolvedModelSettings:
    """What one model runs with: its ``models.<name>`` entry merged over the defaults."""

    name: str
    batching: BatchingSettings
    cache: ResolvedCacheSettings
    output_filters: OutputFilterSettings | None
    """The filter rule, or None: no filter runs on this model's outputs."""
    resilience: ResilienceSettings
    """Deadline, isolation, retries, breaker, fallbacks."""
    monitoring: ModelMonitoringSettings = dataclass_field(default_factory=ModelMonitoringSettings)
    """Sample rate and inputs of the prediction log."""


def canonical_name(name: str) -> str:
    """The form a model name is matched in: lower case, ``-`` and ``.`` as ``_``."""
    return name.lower().replace("-", "_").replace(".", "_")


Entry = TypeVar("Entry")


def by_canonical_name(entries: Mapping[str, Entry], where: str) -> dict[str, Entry]:
    """``entries`` keyed by canonical model name; two keys naming one model are an error
    (a ValueError naming ``where``, the section they are in)."""
    found: dict[str, Entry] = {}
    spelt: dict[str, str] = {}
    for name, entry in entries.items():
        key = canonical_name(name)
        if key in found and spelt[key] != name:
            raise ValueError(
                f"{where}: '{spelt[key]}' and '{name}' name the same model (model names "
                "match ignoring case, with '-', '.' and '_' alike)"
            )
        found[key], spelt[key] = entry, name
    return found


def resolve(
    name: str,
    entry: ModelSettings | None,
    batching: BatchingSettings,
    cache_enabled: bool,
    cache_ttl_s: float,
) -> ResolvedModelSettings:
    """``entry`` (``models.<name>``, if there is one) over the defaults."""
    entry = entry or ModelSettings()
    return ResolvedModelSettings(
        name=name,
        batching=batching.model_copy(update=entry.batching.model_dump(exclude_none=True)),
        cache=ResolvedCacheSettings(
            enabled=cache_enabled and entry.cache.enabled is not False,
            ttl_s=entry.cache.ttl_s or cache_ttl_s,
        ),
        output_filters=entry.output_filters,
        resilience=ResilienceSettings(
            **{field: getattr(entry, field) for field in ResilienceSettings.model_fields}
        ),
        monitoring=entry.monitoring,
    )


def with_deprecated(
    models: Mapping[str, ModelSettings],
    old: Mapping[str, tuple[str, Mapping[str, Section]]],
) -> dict[str, ModelSettings]:
    """``models`` with the per-model values of the old spellings merged in, one
    deprecation line each. ``old`` maps a ModelSettings field to (old key, entries by
    model name), e.g. ``{"batching": ("server.model_batching", {...})}``. Where both
    spellings give the same field of the same model, the new one (``models``) wins."""
    merged = dict(models)
    for field, (old_key, entries) in old.items():
        if not entries:
            continue
        logger.warning(
            "%s is deprecated; use models.<name>.%s (given for: %s)",
            old_key,
            field,
            ", ".join(entries),
        )
        for name, given in entries.items():
            key = canonical_name(name)
            current = merged.get(key, ModelSettings())
            combined = _over(getattr(current, field), given)
            merged[key] = current.model_copy(update={field: combined})
    return merged


def _over(new: Section | None, old: Section) -> Section:
    """``old`` with the fields ``new`` gives over it."""
    if new is None:
        return old
    given = {name: getattr(new, name) for name in new.model_fields_set}
    return old.model_copy(
        update={name: value for name, value in given.items() if value is not None}
    )
