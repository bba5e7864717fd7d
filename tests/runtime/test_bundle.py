"""A Python model's bundle: the same files make the same bytes (so the same sha256), every
file is in it, and what is not a plain file or folder stays out, both ways."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from servewell.errors import InvalidArtifact
from servewell.runtime.bundle import unpack_bundle, write_bundle
from serving_models import PYTHON_MODELS


def _artifacts(folder: Path) -> Path:
    (folder / "weights" / "empty").mkdir(parents=True)
    (folder / "weights" / "layer.bin").write_bytes(bytes(range(256)) * 10)
    (folder / "config.json").write_text('{"sleep_ms": 1}')
    (folder / "héllo.txt").write_text("non-ASCII names travel too")
    return folder


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_files_make_the_same_bytes(tmp_path: Path) -> None:
    first = _artifacts(tmp_path / "a")
    shutil.copytree(first, tmp_path / "b")
    os.utime(tmp_path / "b" / "config.json", (1, 1))  # other times, same content
    os.chmod(tmp_path / "b" / "weights" / "layer.bin", 0o600)
    source = PYTHON_MODELS / "slow.py"
    bundles = [
        write_bundle(source, tmp_path / name, None, tmp_path / f"{name}.tar") for name in "ab"
    ]
    assert _digest(bundles[0]) == _digest(bundles[1])
    (tmp_path / "b" / "config.json").write_text('{"sleep_ms": 2}')
    changed = write_bundle(source, tmp_path / "b", None, tmp_path / "changed.tar")
    assert _digest(changed) != _digest(bundles[0])
    other_class = write_bundle(source, tmp_path / "a", "SlowModel", tmp_path / "class.tar")
    assert _digest(other_class) != _digest(bundles[0])


def test_unpacking_gives_back_every_file_and_folder(tmp_path: Path) -> None:
    artifacts = _artifacts(tmp_path / "artifacts-in")
    bundle = write_bundle(PYTHON_MODELS / "slow.py", artifacts, "SlowModel", tmp_path / "b.tar")
    into = tmp_path / "out"
    into.mkdir()
    manifest = unpack_bundle(bundle, into)
    assert (manifest.module, manifest.model_class) == ("slow.py", "SlowModel")
    assert (into / "slow.py").read_bytes() == (PYTHON_MODELS / "slow.py").read_bytes()
    unpacked = sorted(p.relative_to(into / "artifacts") for p in (into / "artifacts").rglob("*"))
    assert unpacked == sorted(p.relative_to(artifacts) for p in artifacts.rglob("*"))
    assert (into / "artifacts" / "weights" / "empty").is_dir()


def test_a_symbolic_link_in_the_folder_is_refused(tmp_path: Path) -> None:
    artifacts = _artifacts(tmp_path / "artifacts")
    (artifacts / "link").symlink_to("/etc/passwd")
    with pytest.raises(InvalidArtifact, match="link is a symbolic link; copy what it points"):
        write_bundle(PYTHON_MODELS / "slow.py", artifacts, None, tmp_path / "b.tar")


@pytest.mark.parametrize(
    ("source", "artifacts", "says"),
    [
        ("column.json", None, "is not a Python file"),
        ("missing.py", None, "is not a Python file"),
        ("slow.py", "slow.py", "is not a folder"),
        ("slow.py", "no-such-folder", "no-such-folder does not exist"),
    ],
)
def test_bad_sources_are_refused(
    tmp_path: Path, source: str, artifacts: str | None, says: str
) -> None:
    folder = PYTHON_MODELS / artifacts if artifacts else None
    with pytest.raises(InvalidArtifact, match=says):
        write_bundle(PYTHON_MODELS / source, folder, None, tmp_path / "b.tar")


def _tar_with(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "crafted.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


MANIFEST = b'{"bundle": 1, "class": null, "module": "m.py"}'


@pytest.mark.parametrize(
    ("members", "says"),
    [
        ({"servewell-python.json": MANIFEST, "m.py": b"", "../escape.txt": b"x"}, "unexpected"),
        ({"servewell-python.json": MANIFEST, "m.py": b"", "/etc/escape": b"x"}, "unexpected"),
        ({"servewell-python.json": MANIFEST, "m.py": b"", "artifacts/../../x": b"x"}, "unexpected"),
        ({"m.py": b""}, "servewell-python.json"),
        ({"servewell-python.json": MANIFEST}, "does not hold its module m.py"),
        ({"servewell-python.json": b'{"bundle": 1, "module": "../m.py"}'}, "manifest"),
    ],
)
def test_a_bundle_that_is_not_ours_is_refused(
    tmp_path: Path, members: dict[str, bytes], says: str
) -> None:
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(InvalidArtifact, match=says):
        unpack_bundle(_tar_with(tmp_path, members), into)
    assert not (tmp_path / "escape.txt").exists()
