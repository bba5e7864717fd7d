"""A Python model as one artifact: its source file and its artifacts folder in one tar.

The store keeps, hashes and checks one file per artifact, so a Python model travels as
one deterministic tar (entries sorted, times and owners zero, modes fixed): the same
files always make the same bytes, hence the same sha256, and the integrity check on
every fetch covers every file. Inside::

    servewell-python.json   {"bundle": 1, "module": "<file>.py", "class": "<name>" | null}
    <file>.py               the model's source, under the name it was registered with
    artifacts/...           the folder given with --artifacts (absent when none was)

Unpacking goes through tarfile's ``data`` filter (no absolute paths, no ``..``, no
links or devices) into a folder that is then made read-only; nothing here imports or
runs the code.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servewell.errors import InvalidArtifact

MANIFEST = "servewell-python.json"
ARTIFACTS = "artifacts"
BUNDLE_VERSION = 1


@dataclass(frozen=True, slots=True)
class BundleManifest:
    """What a bundle holds besides its files."""

    module: str
    """The source file's name (``.py``), at the top of the bundle."""
    model_class: str | None = None
    """The class to serve; None: the one model class the file defines."""

    def to_json(self) -> bytes:
        data = {"bundle": BUNDLE_VERSION, "class": self.model_class, "module": self.module}
        return json.dumps(data, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> BundleManifest:
        data = json.loads(raw)
        module, model_class = data.get("module"), data.get("class")
        if data.get("bundle") != BUNDLE_VERSION or not is_module_name(module):
            raise ValueError(f"unexpected manifest {data!r}")
        if model_class is not None and not isinstance(model_class, str):
            raise ValueError(f"unexpected class {model_class!r}")
        return cls(module, model_class)


def is_module_name(name: Any) -> bool:
    """A plain ``.py`` file name, with no folder in it."""
    return isinstance(name, str) and name.endswith(".py") and name == Path(name).name


def write_bundle(
    source: Path, artifacts: Path | None, model_class: str | None, target: Path
) -> Path:
    """Pack ``source`` (a .py file) and the ``artifacts`` folder into ``target``."""
    if source.suffix != ".py" or not source.is_file():
        raise InvalidArtifact(f"{source} is not a Python file (.py)")
    if artifacts is not None and not artifacts.exists():
        raise InvalidArtifact(f"the artifacts folder {artifacts} does not exist")
    if artifacts is not None and not artifacts.is_dir():
        raise InvalidArtifact(f"the artifacts folder {artifacts} is not a folder")
    entries = [(source.name, source)]
    if artifacts is not None:
        entries += [(ARTIFACTS, artifacts), *_folder_entries(artifacts)]
    manifest = BundleManifest(source.name, model_class).to_json()
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        tar.addfile(_info(MANIFEST, len(manifest)), io.BytesIO(manifest))
        for name, path in entries:
            _add(tar, name, path)
    return target


def _folder_entries(folder: Path) -> list[tuple[str, Path]]:
    """Every folder and file under ``folder``, sorted, as (name in the bundle, path)."""
    entries = []
    for parent, folders, files in os.walk(folder):
        for name in [*folders, *files]:
            path = Path(parent) / name
            if path.is_symlink():
                raise InvalidArtifact(
                    f"{path} is a symbolic link; copy what it points to into the folder"
                )
            relative = path.relative_to(folder).as_posix()
            entries.append((f"{ARTIFACTS}/{relative}", path))
    return sorted(entries)


def _add(tar: tarfile.TarFile, name: str, path: Path) -> None:
    try:
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            tar.addfile(_info(name, 0, directory=True))
        elif stat.S_ISREG(mode):
            with path.open("rb") as reader:
                tar.addfile(_info(name, os.fstat(reader.fileno()).st_size), reader)
        else:
            raise InvalidArtifact(f"{path} is not a regular file or folder")
    except OSError as exc:
        raise InvalidArtifact(f"cannot read {path}: {exc.strerror or exc}") from exc


def _info(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    """A tar entry that says nothing of when or by whom: only name, kind and size."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.size = size
    info.mode = 0o755 if directory else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def unpack_bundle(bundle: Path, into: Path) -> BundleManifest:
    """Unpack ``bundle`` into the empty folder ``into``, make it read-only, and return
    its manifest; ``into/artifacts`` exists even when the model has no artifacts."""
    try:
        with tarfile.open(bundle, "r:") as tar:
            manifest = _read_manifest(tar)
            _check_members(tar, manifest)
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, KeyError, ValueError) as exc:
        raise InvalidArtifact(
            f"{bundle.name} is not a readable Python model bundle: {exc}"
        ) from exc
    if not (into / manifest.module).is_file():
        raise InvalidArtifact(f"{bundle.name} does not hold its module {manifest.module}")
    (into / ARTIFACTS).mkdir(exist_ok=True)
    _set_writable(into, writable=False)
    return manifest


def _read_manifest(tar: tarfile.TarFile) -> BundleManifest:
    member = tar.extractfile(MANIFEST)  # KeyError when absent
    if member is None:
        raise ValueError(f"{MANIFEST} is not a file")
    return BundleManifest.from_json(member.read())


def _check_members(tar: tarfile.TarFile, manifest: BundleManifest) -> None:
    """Only what :func:`write_bundle` writes: the manifest, the module, the artifacts."""
    for member in tar.getmembers():
        name = member.name
        expected = name in (MANIFEST, manifest.module, ARTIFACTS) or (
            name.startswith(f"{ARTIFACTS}/") and ".." not in name.split("/")
        )
        if not expected or not (member.isfile() or member.isdir()):
            raise ValueError(f"unexpected entry {name!r}")


def remove_unpacked(folder: Path) -> None:
    """Remove a folder :func:`unpack_bundle` filled (write access comes back first)."""
    import shutil

    if folder.exists():
        _set_writable(folder, writable=True)
        shutil.rmtree(folder, ignore_errors=True)


def _set_writable(folder: Path, *, writable: bool) -> None:
    """Files and folders read-only (a model cannot change its own artifacts by mistake),
    or writable again for removal."""
    file_mode, folder_mode = (0o644, 0o755) if writable else (0o444, 0o555)
    for parent, folders, files in os.walk(folder):
        for name in files:
            os.chmod(Path(parent) / name, file_mode)
        for name in folders:
            os.chmod(Path(parent) / name, folder_mode)
    os.chmod(folder, folder_mode)
