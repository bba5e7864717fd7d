"""Shared fixtures: real databases (SQLite files and the PostgreSQL server on this
machine), real models (scikit-learn fitted here, converted to ONNX), real services."""

from __future__ import annotations

import faulthandler
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest

from servewell.bootstrap import Services, build_services
from servewell.registration.convert import convert_sklearn
from servewell.runtime.sklearn import signature_from_estimator
from servewell.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get(
    "SERVEWELL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def _postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:
        return False


#: The longest one test may take. Past it, every thread's stack goes to stderr and the
#: run ends with exit code 1, so `make test` cannot hang forever on a wait nobody bounded.
TEST_DEADLINE_S = float(os.environ.get("SERVEWELL_TEST_DEADLINE_S", "900"))


@pytest.fixture(autouse=True)
def _test_deadline() -> Iterator[None]:
    faulthandler.dump_traceback_later(TEST_DEADLINE_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if not _postgres_reachable():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}")
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh schema of the test database, dropped afterwards."""
    import psycopg

    schema = f"sw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{postgres_admin_url}?options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each registry test runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings on the embedded default only (for tests that need no second backend)."""
    return Settings(home=tmp_path / "home")


@pytest.fixture
def sqlite_services(sqlite_settings: Settings) -> Iterator[Services]:
    built = build_services(sqlite_settings)
    yield built
    built.close()


# --- models --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    features, target = load_iris(return_X_y=True)
    return features.astype(np.float32), target


@pytest.fixture(scope="session")
def classifier(iris: tuple[np.ndarray, np.ndarray]) -> object:
    """A fitted scikit-learn pipeline (scaler + logistic regression), 3 classes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = iris
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, target)


@pytest.fixture(scope="session")
def model_files(
    tmp_path_factory: pytest.TempPathFactory,
    classifier: object,
    iris: tuple[np.ndarray, np.ndarray],
) -> dict[str, Path]:
    """The classifier as a joblib file and as an ONNX file."""
    folder = tmp_path_factory.mktemp("models")
    joblib_path = folder / "iris.joblib"
    joblib.dump(classifier, joblib_path)
    conversion = convert_sklearn(
        classifier, signature_from_estimator(classifier), {"input": iris[0]}
    )
    onnx_path = folder / "iris.onnx"
    onnx_path.write_bytes(conversion.onnx_bytes)
    return {"joblib": joblib_path, "onnx": onnx_path}


# --- Redis ------------------------------------------------------------------------------------

REDIS_URL = os.environ.get("SERVEWELL_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis on this machine; keys are namespaced per test by the tests."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[object]:
    """A Redis of this test's own, which the test may stop and start again."""
    from redis_server import PrivateRedis

    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()
