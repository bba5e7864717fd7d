"""The documentation site: `mkdocs build --strict` passes, and its CLI and HTTP
reference pages are generated from the code (every command, every route), not kept by
hand in docs/."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy_tools import ROOT, find_tool, load_script

MKDOCS_HINT = "pip install mkdocs (the dev extra)"


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    mkdocs = find_tool("mkdocs", MKDOCS_HINT)
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [mkdocs, "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    result = _build(ROOT / "mkdocs.yml", folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def test_the_reference_pages_are_not_committed() -> None:
    assert not (ROOT / "docs" / "reference").exists()


def test_every_command_is_in_the_cli_reference(site: Path) -> None:
    import typer

    from servewell.cli.app import app

    page = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    root = typer.main.get_command(app)
    for name in root.commands:  # type: ignore[attr-defined]
        assert f"<code>servewell {name}</code>" in page, name
    assert "<code>servewell db upgrade</code>" in page


def test_every_route_is_in_the_http_reference(site: Path) -> None:
    openapi_schema = load_script(
        ROOT / "tools" / "mkdocs_reference.py", "mkdocs_reference"
    ).openapi_schema
    page = (site / "reference" / "http" / "index.html").read_text(encoding="utf-8")
    for path, operations in openapi_schema()["paths"].items():
        for method in operations:
            assert f"<code>{method.upper()} {path}</code>" in page, (method, path)


def test_strict_fails_on_a_broken_link(tmp_path: Path) -> None:
    """The build above can fail: the same site with a link to a missing page does."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copytree(ROOT / "tools", tmp_path / "tools")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "docs" / "index.md").write_text("# servewell\n\n[gone](missing.md)\n")
    result = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "missing.md" in result.stdout + result.stderr
