"""Keeping a file with an existing version (``SqlRegistry.attach``), on both backends:
added, replaced by role, never the artifacts that serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from servewell.bootstrap import Services
from servewell.errors import ModelNotFound, VersionNotFound
from servewell.registration.register import register_file
from servewell.registry import ONNX, ORIGINAL, Artifact


def test_attach_adds_then_replaces_by_role(
    services: Services, model_files: dict[str, Path]
) -> None:
    version = register_file(services, model_files["onnx"], "iris")
    first, _ = services.artifacts.put_bytes(b'{"rows": 1}')
    kept = services.registry.attach("iris", 1, Artifact.of("profile.json", "json", first))
    assert kept.artifact("profile.json").sha256 == first.sha256
    assert kept.original == version.original  # what serves is untouched
    second, _ = services.artifacts.put_bytes(b'{"rows": 2}')
    again = services.registry.attach("iris", 1, Artifact.of("profile.json", "json", second))
    assert [a.role for a in again.artifacts].count("profile.json") == 1
    assert again.artifact("profile.json").sha256 == second.sha256
    assert services.registry.referenced_digests() == {version.sha256, second.sha256}


def test_attach_refuses_what_serves_and_unknown_versions(
    services: Services, model_files: dict[str, Path]
) -> None:
    register_file(services, model_files["onnx"], "iris")
    stored, _ = services.artifacts.put_bytes(b"other bytes")
    for role in (ORIGINAL, ONNX):
        with pytest.raises(ValueError, match="cannot be replaced"):
            services.registry.attach("iris", 1, Artifact.of(role, "onnx", stored))
    with pytest.raises(VersionNotFound):
        services.registry.attach("iris", 2, Artifact.of("x.json", "json", stored))
    with pytest.raises(ModelNotFound):
        services.registry.attach("nobody", 1, Artifact.of("x.json", "json", stored))
    assert services.registry.get_version("iris", 1).original.sha256 != stored.sha256
