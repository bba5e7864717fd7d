"""What starting a command or a server worker imports: not the stacks it does not use.

Issue #11: importing the CLI took 4-9 s on a loaded machine, and every ``--workers N``
worker imports it (multiprocessing's spawn re-runs the ``servewell`` script) before its
app factory, so uvicorn's health check killed workers still importing. Each case runs in
a fresh interpreter and lists ``sys.modules`` afterwards: a behavioural check (the times
are in ``bench/README.md``), which fails when someone imports scikit-learn at the top of
a command module again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Training, conversion, plotting and deep-learning stacks: no command imports them
#: before it runs, and the server never does.
LIFECYCLE_STACKS = (
    "sklearn",
    "skl2onnx",
    "onnx",
    "onnxruntime",
    "scipy",
    "pandas",
    "matplotlib",
    "torch",
    "transformers",
    "tokenizers",
    "tiktoken",  # LLM token counts: read when first needed (serving/token_count.py)
)
#: The server's own stack, and the registry's: not needed to parse a command line.
SERVING_STACKS = ("sqlalchemy", "alembic", "fastapi", "uvicorn", "prometheus_client", "httpx")
#: servewell's packages a server worker has no use for.
LIFECYCLE_PACKAGES = ("training", "reports", "optimize", "export", "registration", "cli")


def _imported_after(code: str, home: Path) -> set[str]:
    """The modules loaded once ``code`` has run in a new interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "SERVEWELL_HOME": str(home)},
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def _top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_the_command_line_imports_no_heavy_stack(home: Path) -> None:
    loaded = _top_level(_imported_after("import servewell.cli.app", home))
    unwanted = loaded & {*LIFECYCLE_STACKS, *SERVING_STACKS}
    assert not unwanted


def test_the_package_alone_imports_nothing_of_its_own(home: Path) -> None:
    loaded = _imported_after("import servewell", home)
    assert {name for name in loaded if name.startswith("servewell")} == {
        "servewell",
        "servewell.exports",
    }
    unwanted = _top_level(loaded) & {"numpy", "pydantic", *SERVING_STACKS}
    assert not unwanted


def test_listing_keys_does_not_import_the_training_stack(home: Path) -> None:
    code = (
        "from servewell.cli.app import app\n"
        "try:\n    app(['keys', 'list'])\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
    )
    loaded = _top_level(_imported_after(code, home))
    assert "sqlalchemy" in loaded  # it did read the registry
    unwanted = loaded & set(LIFECYCLE_STACKS)
    assert not unwanted


def test_a_server_worker_imports_only_the_serving_side(home: Path) -> None:
    code = (
        "import servewell.http.protocol\n"
        "from servewell.http.app import create_app_from_environment\n"
        "create_app_from_environment()\n"
    )
    loaded = _imported_after(code, home)
    assert "fastapi" in _top_level(loaded)  # the app was built
    unwanted = _top_level(loaded) & set(LIFECYCLE_STACKS)
    assert not unwanted
    packages = {name.split(".")[1] for name in loaded if name.startswith("servewell.")}
    unwanted = packages & set(LIFECYCLE_PACKAGES)
    assert not unwanted
