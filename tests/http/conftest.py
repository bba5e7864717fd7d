from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from servewell.http import create_app
from servewell.settings import AuthSettings, CacheSettings, ServerSettings, Settings
from serving_models import InProcessClient, build_model_home, serve_in_process


@pytest.fixture(scope="session")
def model_home(
    tmp_path_factory: pytest.TempPathFactory,
    classifier: object,
    iris: tuple[np.ndarray, np.ndarray],
) -> Path:
    return build_model_home(tmp_path_factory.mktemp("serving") / "home", classifier, iris[0])


@pytest.fixture(scope="module")
def client(model_home: Path) -> Iterator[InProcessClient]:
    """The app in process (lifespan included), serving iris@1 and @2, adder and echo."""
    settings = Settings(
        home=model_home,
        auth=AuthSettings(enabled=False),
        cache=CacheSettings(enabled=False),  # every request reaches the model here
        server=ServerSettings(models=["iris", "iris@2", "adder", "echo"]),
    )
    app = create_app(settings)
    with serve_in_process(app) as in_process:
        yield in_process
