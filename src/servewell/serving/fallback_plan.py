"""The fallback chains a server will run, resolved and checked once, at start-up.

``models.<name>.fallbacks`` (``settings.resilience``) names targets in words; here each
becomes what the request path needs, and a target that could never answer is refused
before anything loads, with one line naming the model and the mismatch
(``models.fraud.fallbacks: fraud@2 has no output 'label'``), so the server does not
start (``servewell serve`` exits 9):

- another model (``fraud@2``, ``fraud@stable``, ``fraud-lite``) is resolved in the
  registry as the pool resolves what it serves; it must be one of the versions this
  server serves, and able to stand in for the primary (``core.compatible``); a version
  naming itself is left out of its own chain;
- ``cache`` needs the response cache on for the model;
- ``default`` values are made into one row of each named output, in its datatype and
  shape, so every request's rows get a copy.

The check reads signatures from the registry: they are what the runtimes serve with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from servewell.core.compatible import incompatibility, shapes_fit
from servewell.core.datatypes import to_numpy_dtype
from servewell.core.ref import ModelRef
from servewell.core.signature import Signature, TensorSpec
from servewell.errors import InvalidConfig, NotFound, ServewellError
from servewell.registry import ModelVersion, RegistryAccess
from servewell.serving.pool import served_references
from servewell.settings.resilience import CacheFallback, FallbackTarget, ModelFallback

Array = np.ndarray[Any, Any]


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """Another served version answers, within its own ``timeout_ms``."""

    name: str
    version: int
    timeout_ms: float

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class CacheTarget:
    """The last answer the response cache kept for the same request, even expired."""

    label = "cache"


@dataclass(frozen=True, slots=True)
class DefaultTarget:
    """A constant answer: one row of each configured output, in the primary's order."""

    outputs: Mapping[str, Array]
    label = "default"


Target = ModelTarget | CacheTarget | DefaultTarget
#: Each served version with fallbacks (name, number) -> its targets, in order.
Chains = dict[tuple[str, int], tuple[Target, ...]]


def plan_fallbacks(access: RegistryAccess, refs: Sequence[ModelRef]) -> Chains:
    """The chain of every version the server will serve (``refs``, as the pool takes
    them); InvalidConfig naming the first target that could never answer. Registry I/O:
    run it off the event loop."""
    settings = access.settings
    if not any(entry.fallbacks for entry in settings.models.values()):
        return {}
    wanted = served_references(access, refs)
    served = _Served(_served_versions(access, wanted), tuple(map(str, wanted)))
    chains: Chains = {}
    for version in served.versions.values():
        configured = settings.model(version.name).resilience.fallbacks
        if configured:
            targets = (_target(access, version, given, served) for given in configured)
            chains[(version.name, version.version)] = tuple(t for t in targets if t is not None)
    return chains


@dataclass(frozen=True)
class _Served:
    """What the pool will load: its versions, and the references naming them (``refs``
    or, without any, every registered model)."""

    versions: Mapping[tuple[str, int], ModelVersion]
    refs: tuple[str, ...]


def _served_versions(
    access: RegistryAccess, wanted: Sequence[ModelRef]
) -> dict[tuple[str, int], ModelVersion]:
    """The versions ``wanted`` resolves to (one that does not resolve is the pool's to
    report)."""
    registry = access.registry
    served: dict[tuple[str, int], ModelVersion] = {}
    for ref in wanted:
        try:
            version = registry.resolve(ref)
        except NotFound:
            continue
        served[(version.name, version.version)] = version
    return served


def _target(
    access: RegistryAccess,
    primary: ModelVersion,
    given: FallbackTarget,
    served: _Served,
) -> Target | None:
    where = f"models.{primary.name}.fallbacks"
    if isinstance(given, ModelFallback):
        return _model_target(access, primary, given.ref, served, where)
    if isinstance(given, CacheFallback):
        if not access.settings.model(primary.name).cache.enabled:
            raise InvalidConfig(f"{where}: 'cache' needs the response cache, which is off for it")
        return CacheTarget()
    return DefaultTarget(default_outputs(primary.signature, given.outputs, where))


def _model_target(
    access: RegistryAccess,
    primary: ModelVersion,
    text: str,
    served: _Served,
    where: str,
) -> ModelTarget | None:
    try:
        ref = ModelRef.parse(text)
        version = access.registry.resolve(ref)
    except ServewellError as exc:  # InvalidReference, NotFound
        raise InvalidConfig(f"{where}: {text}: {exc.message}") from None
    key = (version.name, version.version)
    named = f"{version.name}@{version.version}"
    who = text if text == named else f"{text} ({named})"
    if key == (primary.name, primary.version):
        return None  # a version is not its own fallback (fraud@2's chain naming fraud@2)
    if key not in served.versions:
        models = ",".join([*served.refs, str(ref)])
        raise InvalidConfig(
            f"{where}: {who} is not served here (add it to --models: --models {models})"
        )
    mismatch = incompatibility(primary.signature, served.versions[key].signature, who)
    if mismatch:
        raise InvalidConfig(f"{where}: {mismatch}")
    timeout_ms = access.settings.model(version.name).resilience.timeout_ms
    return ModelTarget(version.name, version.version, timeout_ms)


def default_outputs(signature: Signature, given: Mapping[str, Any], where: str) -> dict[str, Array]:
    """One row of each output ``given`` names, in the signature's order and datatypes;
    InvalidConfig (starting with ``where``) naming an output the model does not give or a
    value that does not fit it."""
    declared = [spec.name for spec in signature.outputs]
    for name in given:
        if name not in declared:
            gives = ", ".join(f"'{known}'" for known in declared) or "none"
            raise InvalidConfig(
                f"{where}: default names the output '{name}'; the model gives {gives}"
            )
    return {
        spec.name: _one_row(spec, given[spec.name], f"{where}: default '{spec.name}'")
        for spec in signature.outputs
        if spec.name in given
    }


def _one_row(spec: TensorSpec, value: Any, where: str) -> Array:
    text = spec.datatype == "BYTES"
    try:
        row = np.asarray([value], dtype=np.object_ if text else None)
    except (ValueError, TypeError):
        raise InvalidConfig(f"{where}: {value!r} is not a value or a regular array") from None
    if not shapes_fit(spec.shape, row.shape, strict=False):
        raise InvalidConfig(
            f"{where}: {value!r} has the shape {list(row.shape[1:])} a row; the model's "
            f"rows are {list(spec.row_shape)}"
        )
    return _as_text(row, value, where) if text else _as_number(spec, row, value, where)


def _as_text(row: Array, value: Any, where: str) -> Array:
    items = row.reshape(-1).tolist()
    if not all(isinstance(item, str | bytes) for item in items):
        raise InvalidConfig(f"{where}: {value!r} is not text (the output is BYTES)")
    encoded = [item.encode("utf-8") if isinstance(item, str) else item for item in items]
    return np.array(encoded, dtype=np.object_).reshape(row.shape)


def _as_number(spec: TensorSpec, row: Array, value: Any, where: str) -> Array:
    if row.dtype.kind not in "biuf":
        raise InvalidConfig(f"{where}: {value!r} is not a number (the output is {spec.datatype})")
    want = to_numpy_dtype(spec.datatype)
    with np.errstate(over="ignore", invalid="ignore"):
        cast = row.astype(want)
    exact = want.kind == "f" or np.array_equal(cast, row)
    if not exact or not np.array_equal(np.isfinite(cast), np.isfinite(row)):
        raise InvalidConfig(f"{where}: {value!r} does not fit {spec.datatype}")
    return cast
