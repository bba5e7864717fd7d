"""The store sweep (``servewell gc``), and registrations racing each other and a sweep,
on both backends."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import onnx
import pytest

from servewell.bootstrap import Services, build_services
from servewell.core.ref import ModelRef
from servewell.errors import ModelNotFound, VersionNotFound
from servewell.registration.register import RegisterOptions, register_file
from servewell.registry.sweep import STAGING, UNREFERENCED, StoreSweep

HOUR_S = 3600.0


def _age(path: Path, seconds: float) -> None:
    moment = time.time() - seconds
    os.utime(path, (moment, moment))


def _fail_registration(services: Services, path: Path) -> None:
    with pytest.raises(VersionNotFound):
        register_file(
            services, path, "iris", options=RegisterOptions(parent=ModelRef("iris", version=99))
        )


def test_a_failed_registration_leaves_a_file_the_sweep_removes_once_old(
    services: Services, model_files: dict[str, Path], tmp_path: Path
) -> None:
    kept = register_file(services, model_files["joblib"], "iris", trust=True)
    failed = _distinct_model(model_files["onnx"], tmp_path, 0)
    _fail_registration(services, failed)
    leftover = services.artifacts.root / "sha256" / "placeholder"
    for path in services.artifacts.stored_files():
        _age(path, 2 * HOUR_S)
        if path.name not in {a.sha256 for a in kept.artifacts}:
            leftover = path
    sweep = StoreSweep(services.registry, services.artifacts, HOUR_S)
    found = sweep.find()
    assert [(item.path, item.reason) for item in found] == [(leftover, UNREFERENCED)]
    assert found[0].size_bytes == failed.stat().st_size
    assert leftover.exists()  # finding deletes nothing
    assert sweep.remove(found) == found
    assert not leftover.exists()
    for artifact in kept.artifacts:  # what a version references is never touched
        services.artifacts.fetch(artifact.uri, artifact.sha256)
    assert sweep.find() == []


def test_young_files_are_kept(services: Services, model_files: dict[str, Path]) -> None:
    _fail_registration(services, model_files["onnx"])
    upload = services.artifacts.root / "staging" / "upload-abc"
    upload.write_bytes(b"half a model")
    assert StoreSweep(services.registry, services.artifacts, HOUR_S).find() == []
    _age(upload, 2 * HOUR_S)
    (found,) = StoreSweep(services.registry, services.artifacts, HOUR_S).find()
    assert (found.path, found.reason, found.size_bytes) == (upload, STAGING, 12)


def test_storing_bytes_already_present_makes_the_file_young_again(
    services: Services, model_files: dict[str, Path]
) -> None:
    """What protects a registration in progress: it refreshes the file it will reference."""
    _fail_registration(services, model_files["onnx"])
    (path,) = services.artifacts.stored_files()
    _age(path, 2 * HOUR_S)
    sweep = StoreSweep(services.registry, services.artifacts, HOUR_S)
    found = sweep.find()
    assert [item.path for item in found] == [path]
    services.artifacts.put_file(model_files["onnx"])  # a registration of the same bytes
    assert sweep.remove(found) == []  # judged again, once moved aside: young now
    assert path.exists()


def test_an_interrupted_sweep_puts_files_back(
    services: Services, model_files: dict[str, Path]
) -> None:
    version = register_file(services, model_files["onnx"], "iris")
    path = services.artifacts.path_of(version.artifact_uri)
    aside = services.artifacts.root / "staging" / f"sweep-{version.sha256}"
    os.replace(path, aside)  # as a sweep does, before it was killed
    assert StoreSweep(services.registry, services.artifacts, 0.0).find() == []
    services.artifacts.fetch(version.artifact_uri, version.sha256)
    assert not aside.exists()


def _distinct_model(source: Path, folder: Path, round_number: int) -> Path:
    model = onnx.load(str(source))
    model.doc_string = f"round {round_number}"  # new bytes each round
    path = folder / f"model-{round_number}.onnx"
    onnx.save(model, str(path))
    return path


def test_a_failed_registration_never_removes_a_file_a_concurrent_one_uses(
    services: Services, model_files: dict[str, Path], tmp_path: Path
) -> None:
    """Two registrations of the same new bytes race, with separate engines as separate
    processes would have: one fails (unknown parent) after storing the file, the other
    succeeds. The survivor's files must all be there, every round."""
    other = build_services(services.settings)
    rounds, deadline = 40, time.monotonic() + 120
    missing: list[int] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            for number in range(rounds):
                if time.monotonic() > deadline:
                    break
                path = _distinct_model(model_files["onnx"], tmp_path, number)
                start = threading.Barrier(2, timeout=30)
                failing = pool.submit(_register_after, start, other, path, ModelRef("x", 1))
                passing = pool.submit(_register_after, start, services, path, None)
                version = passing.result(timeout=60)
                failing.result(timeout=60)
                if not services.artifacts.path_of(version.artifact_uri).exists():
                    missing.append(number)
    finally:
        other.close()
    assert missing == [], f"rounds whose version lost its artifact: {missing}"
    assert number >= 9, "too few rounds ran to mean anything"


def _register_after(
    start: threading.Barrier, services: Services, path: Path, parent: ModelRef | None
) -> object:
    start.wait()
    try:
        return register_file(services, path, "raced", options=RegisterOptions(parent=parent))
    except ModelNotFound:  # the failing one: its parent does not exist
        return None
