"""Registering a model: check the file, prove its signature, convert, store, record.

Registration is atomic: the files go into the content-addressed store first, then one
database transaction records the version; if anything fails, no row is written. A file
it stored stays: another registration of the same bytes (in another process, perhaps on
another machine) may already be counting on it, and removing it here could leave that
version pointing at nothing. ``servewell gc`` removes such leftovers once they are old.

A remote model (format ``remote``) is its spec file: its signature comes from its
upstream (:mod:`servewell.registration.remote`), and only the normalized spec is stored.

A Python model (format ``python``) is its ``.py`` file and artifacts folder packed into
one bundle (:mod:`servewell.runtime.bundle`) first; from there on it is registered as
any file is, the bundle standing for the file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from servewell.core.ref import ModelRef, check_alias, check_name
from servewell.core.remote_spec import read_remote_spec
from servewell.core.signature import Signature
from servewell.errors import ConversionFailed, InvalidArtifact, InvalidInput, UntrustedArtifact
from servewell.registration.convert import Conversion, convert_sklearn
from servewell.registration.remote import remote_signature
from servewell.registration.signature import check_class_labels, proven_signature
from servewell.registry import (
    ONNX,
    ORIGINAL,
    Artifact,
    ModelVersion,
    NewVersion,
    RegistryAccess,
)
from servewell.runtime import create_runtime, detect_format
from servewell.runtime.base import Array
from servewell.runtime.bundle import write_bundle
from servewell.runtime.factory import REMOTE, check_format, needs_trust
from servewell.runtime.sklearn import SklearnRuntime

logger = logging.getLogger(__name__)

#: What an untrusted file of a format is, in the refusal's words.
UNTRUSTED = {"python": "Python code"}


@dataclass(frozen=True)
class RegisterOptions:
    """What a user may say about a version besides its file."""

    signature: Signature | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    alias: str | None = None
    parent: ModelRef | None = None
    description: str = ""
    convert: bool = True
    """Also store an ONNX conversion of a scikit-learn model, when skl2onnx can make one."""
    sample: Mapping[str, Array] | None = None
    """Real input rows to verify the conversion on; random rows when absent."""
    target_scale: float | None = None
    """A regressor's target spread (standard deviation of the true values): the
    conversion may differ from the original by 0.1 % of it."""
    conversion: Conversion | None = None
    """A conversion made and verified already (the training pipeline's, which scores
    the artifact that will serve before registering): stored as it is."""
    attachments: Mapping[str, bytes] = field(default_factory=dict)
    """Extra files kept with the version (profile, model card, report), by file name."""
    artifacts: Path | None = None
    """A Python model's folder (weights, vocabularies, rules), stored with its file and
    handed to its ``load``."""
    model_class: str | None = None
    """Which class of a Python model's file to serve, when it defines several."""
    by: str | None = None
    """Who registers it (``user:<login>`` from the CLI): the ``alias`` move's author."""


def register_file(
    access: RegistryAccess,
    path: Path,
    name: str,
    *,
    format: str | None = None,
    trust: bool = False,
    options: RegisterOptions | None = None,
) -> ModelVersion:
    """Register the model file at ``path`` as the next version of ``name``."""
    options = options or RegisterOptions()
    check_name(name)
    if options.alias is not None:
        check_alias(options.alias)
    format = check_format(format) if format else detect_format(path)
    if not path.is_file():
        raise InvalidArtifact(f"{path} does not exist or is not a file")
    if needs_trust(format, path) and not trust:
        raise UntrustedArtifact(str(path), UNTRUSTED.get(format, "a pickle/joblib file"))
    if format != "python" and (options.artifacts is not None or options.model_class):
        raise InvalidInput("an artifacts folder and a model class are for format 'python' only")
    if format == REMOTE:
        return _register_remote(access, path, name, options)
    if format == "python":
        with TemporaryDirectory() as work:
            # Named as the source, so every message about it names the user's file.
            bundle = Path(work) / path.name
            write_bundle(path, options.artifacts, options.model_class, bundle)
            return _register_checked(access, bundle, name, format, options)
    return _register_checked(access, path, name, format, options)


def _register_checked(
    access: RegistryAccess, path: Path, name: str, format: str, options: RegisterOptions
) -> ModelVersion:
    """Load, prove, convert, store and record a file whose format and trust are checked."""
    runtime = create_runtime(format, path, access.settings.runtime, options.signature)
    runtime.load()
    extra: list[tuple[str, str, bytes]] = []
    metrics = dict(options.metrics)
    try:
        signature = proven_signature(runtime, path)
        if isinstance(runtime, SklearnRuntime):
            check_class_labels(runtime.estimator, signature)
        if isinstance(runtime, SklearnRuntime) and options.convert:
            conversion = options.conversion or _try_conversion(
                runtime.estimator, signature, options.sample, options.target_scale
            )
            if conversion is not None:
                extra.append((ONNX, "onnx", conversion.onnx_bytes))
                metrics.update(conversion.to_metrics())
    finally:
        runtime.close()  # a Python model's unpacked folder and module go with it
    extra.extend(
        (role, _attachment_format(role), data) for role, data in options.attachments.items()
    )
    return _store_and_record(access, name, format, path, signature, extra, options, metrics)


def _register_remote(
    access: RegistryAccess, path: Path, name: str, options: RegisterOptions
) -> ModelVersion:
    """Check a remote spec, take its signature from the upstream, store the spec."""
    if options.signature is not None:
        raise InvalidInput("a remote model's signature comes from its upstream, not --signature")
    spec = read_remote_spec(path)
    signature = remote_signature(spec)
    upstream = {"upstream_kind": spec.kind, "upstream_url": spec.base_url}
    options = replace(options, params={**upstream, "upstream_model": spec.model, **options.params})
    extra = [(role, _attachment_format(role), data) for role, data in options.attachments.items()]
    with TemporaryDirectory() as work:
        stored = Path(work) / path.name
        stored.write_text(spec.to_yaml(), encoding="utf-8")
        return _store_and_record(
            access, name, REMOTE, stored, signature, extra, options, dict(options.metrics)
        )


def register_estimator(
    access: RegistryAccess,
    name: str,
    estimator: Any,
    *,
    options: RegisterOptions | None = None,
) -> ModelVersion:
    """Register a fitted scikit-learn estimator straight from memory (saved with joblib)."""
    import joblib

    with TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.joblib"
        joblib.dump(estimator, path)
        return register_file(access, path, name, format="sklearn", trust=True, options=options)


def _try_conversion(
    estimator: Any,
    signature: Signature,
    sample: Mapping[str, Array] | None,
    target_scale: float | None = None,
) -> Conversion | None:
    """A faithful ONNX conversion, or None (logged) when there is none: the original serves."""
    try:
        return convert_sklearn(estimator, signature, sample, target_scale=target_scale)
    except ConversionFailed as exc:
        logger.warning("serving through scikit-learn, without ONNX: %s", exc.message)
        return None


def _store_and_record(
    access: RegistryAccess,
    name: str,
    format: str,
    path: Path,
    signature: Signature,
    extra: list[tuple[str, str, bytes]],
    options: RegisterOptions,
    metrics: dict[str, Any],
) -> ModelVersion:
    stored, _ = access.artifacts.put_file(path)
    artifacts = [Artifact.of(ORIGINAL, format, stored)]
    for role, extra_format, data in extra:
        stored, _ = access.artifacts.put_bytes(data)
        artifacts.append(Artifact.of(role, extra_format, stored))
    return access.registry.register(
        NewVersion(
            name=name,
            format=format,
            signature=signature,
            artifacts=tuple(artifacts),
            metrics=metrics,
            params=options.params,
            tags=options.tags,
            parent=options.parent,
            alias=options.alias,
            description=options.description,
            by=options.by,
        )
    )


def _attachment_format(file_name: str) -> str:
    suffix = Path(file_name).suffix.lstrip(".").lower()
    return {"md": "markdown", "htm": "html"}.get(suffix, suffix or "bytes")
