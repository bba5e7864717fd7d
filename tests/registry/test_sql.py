"""The registry on both backends: SQLite file and the real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

from servewell.bootstrap import Services
from servewell.core.ref import ModelRef
from servewell.errors import (
    AliasNotFound,
    InvalidReference,
    ModelNotFound,
    VersionNotFound,
)
from servewell.registration.register import RegisterOptions, register_file


def _register(services: Services, model_files: dict[str, Path], name: str = "iris", **kw: object):
    return register_file(
        services,
        model_files["onnx"],
        name,
        options=RegisterOptions(**kw),  # type: ignore[arg-type]
    )


def test_versions_are_numbered_and_immutable_records(
    services: Services, model_files: dict[str, Path]
) -> None:
    first = _register(services, model_files, metrics={"accuracy": 0.97}, tags={"team": "a"})
    second = _register(services, model_files)
    assert (first.version, second.version) == (1, 2)
    assert first.format == "onnx"
    assert first.metrics == {"accuracy": 0.97}
    assert first.tags == {"team": "a"}
    assert first.sha256 == second.sha256  # same bytes, one stored file
    assert first.size_bytes == model_files["onnx"].stat().st_size
    assert first.signature.class_labels == (0, 1, 2)
    assert services.registry.get_version("iris", 1) == first


def test_reference_resolution(services: Services, model_files: dict[str, Path]) -> None:
    registry = services.registry
    _register(services, model_files)
    _register(services, model_files)
    assert registry.resolve(ModelRef.parse("iris")).version == 2  # no production: latest
    registry.set_alias("iris", "production", 1)
    assert registry.resolve(ModelRef.parse("iris")).version == 1  # production wins
    assert registry.resolve(ModelRef.parse("iris@production")).version == 1
    assert registry.resolve(ModelRef.parse("iris@2")).version == 2
    registry.set_alias("iris", "production", 2)  # aliases move
    assert registry.resolve(ModelRef.parse("iris@production")).aliases == ("production",)
    registry.remove_alias("iris", "production")
    assert registry.resolve(ModelRef.parse("iris")).version == 2


def test_unknown_names_are_typed_errors(services: Services, model_files: dict[str, Path]) -> None:
    registry = services.registry
    with pytest.raises(ModelNotFound, match="'nope' is not registered"):
        registry.resolve(ModelRef.parse("nope"))
    _register(services, model_files)
    with pytest.raises(VersionNotFound, match="no version 7"):
        registry.resolve(ModelRef.parse("iris@7"))
    with pytest.raises(AliasNotFound, match="no alias 'staging'"):
        registry.resolve(ModelRef.parse("iris@staging"))
    with pytest.raises(VersionNotFound):
        registry.set_alias("iris", "staging", 9)
    with pytest.raises(AliasNotFound):
        registry.remove_alias("iris", "staging")
    with pytest.raises(InvalidReference):
        registry.set_alias("iris", "42", 1)


def test_lineage_records_the_parent(services: Services, model_files: dict[str, Path]) -> None:
    _register(services, model_files)
    child = _register(services, model_files, parent=ModelRef("iris", version=1))
    assert child.parent == ModelRef("iris", version=1)
    with pytest.raises(VersionNotFound):
        _register(services, model_files, parent=ModelRef("iris", version=5))
    assert [v.version for v in services.registry.list_versions("iris")] == [1, 2]


def test_listing(services: Services, model_files: dict[str, Path]) -> None:
    _register(services, model_files, name="b-model", alias="production")
    _register(services, model_files, name="a-model")
    _register(services, model_files, name="a-model", alias="staging")
    summaries = services.registry.list_models()
    assert [(s.name, s.latest_version, s.version_count, s.aliases) for s in summaries] == [
        ("a-model", 2, 2, {"staging": 2}),
        ("b-model", 1, 1, {"production": 1}),
    ]


def test_reopening_keeps_everything(services: Services, model_files: dict[str, Path]) -> None:
    from servewell.bootstrap import build_services

    _register(services, model_files, alias="production")
    again = build_services(services.settings)  # migrations already applied: a no-op
    try:
        assert again.registry.resolve(ModelRef.parse("iris")).version == 1
    finally:
        again.close()


def test_a_version_keeps_the_memory_measured_at_its_first_load(
    services: Services, model_files: dict[str, Path]
) -> None:
    registry = services.registry
    first = _register(services, model_files)
    _register(services, model_files)
    assert first.memory_bytes is None  # not loaded yet: nothing measured
    registry.record_memory("iris", 1, 123_456_789_012)  # past 32 bits: a BIGINT
    assert registry.get_version("iris", 1).memory_bytes == 123_456_789_012
    assert registry.resolve(ModelRef.parse("iris@2")).memory_bytes is None
    with pytest.raises(VersionNotFound):
        registry.record_memory("iris", 9, 1)
