"""docs/architecture.md describes the system as built: every source path it names exists.

Paths are the page's inline code spans that look like files or folders (``http/app.py``,
``serving/``, ``tests/http/``, ``bench/run.py``), found relative to the repository, to
``src/`` or to ``src/servewell/``, and the entries of its package-layout tree. Plans
belong in its "Not built yet" list, in words, not as paths.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.md"
BASES = (ROOT, ROOT / "src", ROOT / "src" / "servewell")
#: An inline code span that names a path: word characters, dots, dashes and slashes,
#: with a slash or a known file ending (routes start with "/" and are not paths).
PATH_SPAN = re.compile(r"`([\w.-]+(?:/[\w.*-]*)*)`")
FILE_ENDINGS = (
    ".py",
    ".md",
    ".toml",
    ".yaml",
    ".yml",
    ".lua",
    ".html",
    ".ini",
    ".cfg",
    ".conf",
)
#: A line of the package-layout tree: two spaces, then a module or package name.
TREE_LINE = re.compile(r"^  ([a-z_]+(?:\.py|/))\s")
#: Files the page names that are the user's, not the project's.
USER_FILES = frozenset({"servewell.yaml"})


def _named_paths(text: str) -> set[str]:
    """Path-like spans; ``module.attribute`` (``http/problems.to_reply``) names the module's
    file. Rates (``100/minute``) and the read-only design folder outside the repository
    (``shared/``, ``../shared/``) are not source paths."""
    names = set()
    for span in PATH_SPAN.findall(text):
        if span.startswith(("/", "../", "shared/")) or span[0].isdigit() or span in USER_FILES:
            continue
        if not ("/" in span or span.endswith(FILE_ENDINGS)):
            continue
        folder, _, last = span.rpartition("/")
        if "." in last and not last.endswith(FILE_ENDINGS) and "*" not in last:
            span = f"{folder}/{last.split('.', 1)[0]}.py" if folder else last
        names.add(span)
    return names


def _tree_entries(text: str) -> set[str]:
    block = text.split("## Package layout", 1)[1].split("```", 2)[1]
    return {match.group(1) for line in block.splitlines() if (match := TREE_LINE.match(line))}


def _exists(name: str) -> bool:
    """Whether a named path exists; a bare file name (``holdout.py``) anywhere in src/."""
    if "*" in name:
        return any(any(base.glob(name)) for base in BASES)
    if "/" not in name:
        return any((ROOT / "src").rglob(name)) or (ROOT / name).exists()
    return any((base / name).exists() for base in BASES)


def test_every_path_the_page_names_exists() -> None:
    text = PAGE.read_text(encoding="utf-8")
    missing = sorted(name for name in _named_paths(text) if not _exists(name))
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_the_layout_tree_lists_real_modules() -> None:
    text = PAGE.read_text(encoding="utf-8")
    entries = _tree_entries(text)
    assert entries, "the package-layout tree lists nothing"
    missing = sorted(name for name in entries if not (ROOT / "src" / "servewell" / name).exists())
    assert not missing, f"the package-layout tree lists modules that do not exist: {missing}"


def test_every_package_is_in_the_layout_tree() -> None:
    text = PAGE.read_text(encoding="utf-8")
    entries = _tree_entries(text)
    packages = {
        f"{path.name}/"
        for path in (ROOT / "src" / "servewell").iterdir()
        if (path / "__init__.py").exists()
    }
    assert packages <= entries, f"packages missing from the layout tree: {packages - entries}"
