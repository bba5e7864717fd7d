"""The outside tools the deployment tests run (hadolint, kubectl, promtool, nginx,
prometheus, mkdocs): found in the virtualenv's bin (PyPI-shipped ones) or on PATH, or
the test is skipped saying which is missing and how .ci/run installs it."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def find_tool(name: str, install_hint: str) -> str:
    """The path of ``name``, or skip the test naming how to install it."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        pytest.skip(f"{name} is not installed ({install_hint})")
    return found


def run_tool(*command: str, cwd: Path | None = None, timeout_s: float = 120) -> str:
    """Run ``command``; fail the test with its output unless it exits 0."""
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def load_script(path: Path, name: str) -> ModuleType:
    """A script of the repository (deploy/local/topology.py, tools/mkdocs_reference.py),
    not a module of the package: imported by its path."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def assert_servewell_command(args: list[str]) -> None:
    """``args`` (a container's command after ``servewell``) is one the real CLI accepts:
    its subcommand exists and every option parses (nothing is run)."""
    import typer

    from servewell.cli.app import app

    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    name, *rest = args
    assert name in group.commands, f"servewell has no command {name!r}"
    group.commands[name].make_context(name, list(rest))
