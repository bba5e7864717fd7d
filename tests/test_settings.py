from pathlib import Path

import pytest

from servewell.errors import InvalidConfig
from servewell.settings import load_settings


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no servewell.yaml and no SERVEWELL_CONFIG."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SERVEWELL_CONFIG", raising=False)
    return tmp_path


def test_max_json_depth_defaults_to_64(workdir: Path) -> None:
    assert load_settings().validation.max_json_depth == 64


def test_max_json_depth_is_read_from_the_file(workdir: Path) -> None:
    (workdir / "servewell.yaml").write_text("validation:\n  max_json_depth: 8\n")
    assert load_settings().validation.max_json_depth == 8


@pytest.mark.parametrize("depth", [0, -1])
def test_max_json_depth_below_one_is_one_line(workdir: Path, depth: int) -> None:
    (workdir / "servewell.yaml").write_text(f"validation:\n  max_json_depth: {depth}\n")
    with pytest.raises(InvalidConfig) as caught:
        load_settings()
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert "validation.max_json_depth" in message
    assert "greater than or equal to 1" in message
