"""The ``python`` runtime on the model files of tests/python_models/: loading a bundle,
finding the model class, a module of its own per load, what the model's own failures
become, and nothing left behind."""

from __future__ import annotations

import gc
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from servewell.core.signature import Signature
from servewell.errors import (
    InvalidArtifact,
    InvalidInput,
    InvalidSignature,
    ModelFailed,
    SignatureRequired,
)
from servewell.runtime import create_runtime
from servewell.runtime.bundle import write_bundle
from servewell.runtime.python import PythonRuntime
from serving_models import PYTHON_MODELS

COLUMN = Signature.from_json_file(PYTHON_MODELS / "column.json")
SUM = Signature.from_json_file(PYTHON_MODELS / "sum.json")


@pytest.fixture(autouse=True)
def unpack_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where this test's runtimes unpack (the system's temporary folder is shared)."""
    root = tmp_path / "unpacked"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def bundle_of(
    tmp_path: Path, source: Path, artifacts: Path | None = None, model_class: str | None = None
) -> Path:
    folder = tmp_path / "bundles"
    folder.mkdir(exist_ok=True)
    target = folder / f"{len(list(folder.iterdir()))}-{source.name}"
    return write_bundle(source, artifacts, model_class, target)


def loaded(bundle: Path, signature: Signature = COLUMN) -> PythonRuntime:
    runtime = create_runtime("python", bundle, signature=signature)
    assert isinstance(runtime, PythonRuntime)
    runtime.load()
    return runtime


@pytest.fixture
def sum_runtime(tmp_path: Path) -> Iterator[PythonRuntime]:
    runtime = loaded(bundle_of(tmp_path, PYTHON_MODELS / "sum.py"), SUM)
    yield runtime
    runtime.close()


def test_predicts_the_signatures_outputs(sum_runtime: PythonRuntime) -> None:
    x, y = np.array([1, 2, 3], dtype=np.float32), np.array([10, 20, 30], dtype=np.float32)
    outputs = sum_runtime.predict({"x": x, "y": y})
    np.testing.assert_array_equal(outputs["sum"], [11, 22, 33])
    assert outputs["sum"].dtype == np.float32
    assert outputs["rows_in_call"].tolist() == [3, 3, 3]
    assert sum_runtime.platform == "python"
    assert sum_runtime.may_block


def test_the_artifacts_folder_is_handed_to_load_read_only(
    tmp_path: Path, unpack_root: Path
) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "config.json").write_text('{"sleep_ms": 0}')
    runtime = loaded(bundle_of(tmp_path, PYTHON_MODELS / "slow.py", folder))
    assert runtime.predict({"x": np.array([4.0], dtype=np.float32)})["y"].tolist() == [4.0]
    (unpacked,) = unpack_root.iterdir()
    for path in [unpacked, *unpacked.rglob("*")]:
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), path
    assert (unpacked / "artifacts" / "config.json").read_text() == '{"sleep_ms": 0}'
    runtime.close()
    assert list(unpack_root.iterdir()) == []


def test_two_loads_of_one_file_name_never_share_a_module(tmp_path: Path) -> None:
    """Two versions of model.py (different code, same name) and two loads of one version:
    each load has its own module, and its state is its own."""
    before = _model_modules()
    runtimes = []
    for answer in (1.0, 2.0, 2.0):
        source = tmp_path / f"v{answer}" / "model.py"
        source.parent.mkdir(exist_ok=True)
        source.write_text(
            f"import numpy as np\nANSWER = {answer!r}\ncalls = []\n"
            "class Model:\n"
            "    def load(self, artifacts_dir): pass\n"
            "    def predict(self, inputs):\n"
            "        calls.append(1)\n"
            "        return {'y': np.full(len(inputs['x']), ANSWER * len(calls))}\n"
        )
        runtimes.append(loaded(bundle_of(tmp_path, source)))
    one_row = {"x": np.zeros(1, dtype=np.float32)}
    answers = [runtime.predict(one_row)["y"].tolist() for runtime in runtimes]
    assert answers == [[1.0], [2.0], [2.0]]  # module-level `calls` is one per load
    assert runtimes[2].predict(one_row)["y"].tolist() == [4.0]
    assert len(_model_modules() - before) == 3
    for runtime in runtimes:
        runtime.close()
    assert _model_modules() == before


def _model_modules() -> set[str]:
    return {name for name in sys.modules if name.startswith("servewell_model_")}


def test_class_is_named_when_the_file_has_several(tmp_path: Path) -> None:
    source = PYTHON_MODELS / "two_classes.py"
    with pytest.raises(InvalidArtifact, match=r"defines 2 model classes \(Doubler, Tripler\)"):
        loaded(bundle_of(tmp_path, source))
    tripler = loaded(bundle_of(tmp_path, source, model_class="Tripler"))
    assert tripler.predict({"x": np.array([2.0], dtype=np.float32)})["y"].tolist() == [6.0]
    tripler.close()
    with pytest.raises(InvalidArtifact, match=r"no model class 'Scaler'.*Doubler, Tripler"):
        loaded(bundle_of(tmp_path, source, model_class="Scaler"))


def test_a_file_without_a_model_class_is_refused(tmp_path: Path, unpack_root: Path) -> None:
    before = _model_modules()
    with pytest.raises(InvalidArtifact, match=r"no_class\.py defines no model class"):
        loaded(bundle_of(tmp_path, PYTHON_MODELS / "no_class.py"))
    assert list(unpack_root.iterdir()) == []
    assert _model_modules() == before


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("def broken(:\n", r"cannot be imported: SyntaxError: .*line 1"),
        ("import a_module_nobody_has\n", r"ModuleNotFoundError: .*a_module_nobody_has.*line 1"),
        ("import sys\nsys.exit(3)\n", r"cannot be imported: SystemExit: 3 \(model.py, line 2\)"),
    ],
)
def test_a_file_that_cannot_be_imported_says_why(tmp_path: Path, code: str, says: str) -> None:
    source = tmp_path / "model.py"
    source.write_text(code)
    with pytest.raises(InvalidArtifact, match=says):
        loaded(bundle_of(tmp_path, source))


def test_load_raising_says_where(tmp_path: Path, unpack_root: Path) -> None:
    with pytest.raises(InvalidArtifact, match=r"SlowModel.load\(artifacts_dir\) raised "
                       r"FileNotFoundError: .*config.json.*\(slow.py, line \d+\)"):  # fmt: skip
        loaded(bundle_of(tmp_path, PYTHON_MODELS / "slow.py"))
    assert list(unpack_root.iterdir()) == []


def test_what_predict_raises_is_the_models_failure(tmp_path: Path) -> None:
    runtime = loaded(bundle_of(tmp_path, PYTHON_MODELS / "flaky.py"))
    one_row = {"x": np.ones(1, dtype=np.float32)}
    runtime.predict(one_row)
    runtime.predict(one_row)
    with pytest.raises(ModelFailed, match=r"FlakyModel.predict raised RuntimeError: call 3 "
                       r"fails on purpose \(flaky.py, line \d+\)") as raised:  # fmt: skip
        runtime.predict(one_row)
    assert isinstance(raised.value.__cause__, RuntimeError)  # the log's traceback has it
    runtime.predict(one_row)
    runtime.close()


def test_a_model_may_refuse_an_input_itself(tmp_path: Path) -> None:
    source = tmp_path / "picky.py"
    source.write_text(
        "from servewell.errors import InvalidInput\n"
        "class Picky:\n"
        "    def load(self, artifacts_dir): pass\n"
        "    def predict(self, inputs):\n"
        "        if (inputs['x'] > 100).any():\n"
        "            raise InvalidInput('x must be at most 100', input_name='x')\n"
        "        return {'y': inputs['x']}\n"
    )
    runtime = loaded(bundle_of(tmp_path, source))
    with pytest.raises(InvalidInput, match="at most 100"):
        runtime.predict({"x": np.array([101.0], dtype=np.float32)})
    runtime.close()


@pytest.mark.parametrize(
    ("x", "says"),
    [
        (-1.0, r"returned the outputs \['z'\], its signature declares \['y'\]: missing"),
        (-2.0, r"returned 'y' of shape \[1, 2\]; its signature says \[-1\]"),
        (-3.0, r"returned 'y' as <U4; its signature says FP32"),
    ],
)
def test_outputs_off_the_signature_are_the_models_failure(
    tmp_path: Path, x: float, says: str
) -> None:
    runtime = loaded(bundle_of(tmp_path, PYTHON_MODELS / "wrong_output.py"))
    with pytest.raises(ModelFailed, match="WrongOutputModel.predict " + says):
        runtime.predict({"x": np.array([x], dtype=np.float32)})
    runtime.close()


def test_a_signature_with_outputs_is_required(tmp_path: Path) -> None:
    bundle = bundle_of(tmp_path, PYTHON_MODELS / "sum.py")
    with pytest.raises(SignatureRequired):
        create_runtime("python", bundle).load()
    no_outputs = Signature.from_dict({"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1]}]})
    with pytest.raises(InvalidSignature, match="must declare its outputs"):
        create_runtime("python", bundle, signature=no_outputs).load()


def test_hang_and_crash_models_load_and_answer_ordinary_rows(tmp_path: Path) -> None:
    """They misbehave only on a negative x (which this test never sends)."""
    for name in ("hang", "crash"):
        runtime = loaded(bundle_of(tmp_path, PYTHON_MODELS / f"{name}.py"))
        runtime.warm_up()
        assert runtime.predict({"x": np.array([5.0], dtype=np.float32)})["y"].tolist() == [5.0]
        runtime.close()


def test_a_runtime_dropped_without_close_leaves_nothing(tmp_path: Path, unpack_root: Path) -> None:
    before = _model_modules()
    runtime = loaded(bundle_of(tmp_path, PYTHON_MODELS / "sum.py"), SUM)
    assert list(unpack_root.iterdir())
    assert _model_modules() != before
    del runtime
    gc.collect()
    assert list(unpack_root.iterdir()) == []
    assert _model_modules() == before
