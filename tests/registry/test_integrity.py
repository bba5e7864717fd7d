"""Atomic registration, tamper detection and concurrent writers, on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servewell.bootstrap import Services
from servewell.core.ref import ModelRef
from servewell.errors import ArtifactTampered, VersionNotFound
from servewell.registration.register import RegisterOptions, register_file
from servewell.registry.sweep import StoreSweep
from servewell.serving.loading import open_runtime


def _stored_files(services: Services) -> set[Path]:
    root = services.settings.resolved_artifacts_dir / "sha256"
    return {path for path in root.rglob("*") if path.is_file()} if root.exists() else set()


def test_a_failed_registration_leaves_no_row_and_only_files_the_sweep_removes(
    services: Services, model_files: dict[str, Path]
) -> None:
    register_file(services, model_files["onnx"], "iris")
    files_before = _stored_files(services)
    with pytest.raises(VersionNotFound):
        # The pickle and its ONNX conversion are stored first; the missing parent fails
        # the transaction. The new file stays (a concurrent registration may use it)
        # until the sweep finds it unreferenced.
        register_file(
            services,
            model_files["joblib"],
            "iris",
            trust=True,
            options=RegisterOptions(parent=ModelRef("iris", version=99)),
        )
    assert [v.version for v in services.registry.list_versions("iris")] == [1]
    sweep = StoreSweep(services.registry, services.artifacts, grace_s=0.0)
    assert sweep.remove(sweep.find())
    assert _stored_files(services) == files_before


def test_tampered_artifact_is_refused(services: Services, model_files: dict[str, Path]) -> None:
    version = register_file(services, model_files["onnx"], "iris")
    stored = services.artifacts.path_of(version.artifact_uri)
    stored.write_bytes(stored.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ArtifactTampered, match="modified after registration"):
        open_runtime(services, version)


_WORKER = """
import sys, time
from pathlib import Path
from servewell.bootstrap import build_services
from servewell.registration.register import register_file
from servewell.settings import Settings

home, url, model, start = sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])
services = build_services(Settings(home=Path(home), database_url=url))
time.sleep(max(0.0, start - time.time()))  # all workers start writing at once
for _ in range(4):
    print(register_file(services, model, "raced").version, flush=True)
services.close()
"""


def test_concurrent_processes_get_distinct_versions(
    services: Services, model_files: dict[str, Path]
) -> None:
    settings = services.settings
    start = time.time() + 3.0
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                str(settings.home),
                settings.resolved_database_url,
                str(model_files["onnx"]),
                str(start),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    numbers: list[int] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        numbers.extend(int(line) for line in out.split())
    assert sorted(numbers) == list(range(1, 13))
    listed = [v.version for v in services.registry.list_versions("raced")]
    assert listed == list(range(1, 13))
    assert json.dumps(listed)  # every row reads back whole
