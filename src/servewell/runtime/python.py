"""A user's own model class (format ``python``), as MLflow's pyfunc or MLServer's custom
runtimes run one: pre- and post-processing, ensembles, rules, calls to other services.

The model is one ``.py`` file that defines one *model class* (a class with ``load`` and
``predict``; name it with ``--class`` when the file defines several)::

    class Model:
        def load(self, artifacts_dir: pathlib.Path) -> None: ...
        def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

It arrives as a bundle (:mod:`servewell.runtime.bundle`) whose sha256 the store has
checked before this runtime sees it. :meth:`PythonRuntime.load` unpacks it into a fresh
read-only folder, imports the file under a name of its own (two versions of one file
never share a module in ``sys.modules``), makes the class with no arguments and calls
``load`` with the artifacts folder. ``predict`` gets the validated inputs by name and
answers the signature's outputs; anything else it returns, and anything it raises but
:class:`~servewell.errors.InvalidInput` (the model refusing a request: a 400), is a
:class:`~servewell.errors.ModelFailed`. Loading runs arbitrary code: the registry takes
such a model only with ``--trust``.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
import tempfile
import traceback
import uuid
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from servewell.core.signature import Signature
from servewell.errors import (
    InvalidArtifact,
    InvalidInput,
    InvalidSignature,
    ModelFailed,
    SignatureRequired,
)
from servewell.runtime.base import Array, sample_inputs
from servewell.runtime.bundle import ARTIFACTS, BundleManifest, remove_unpacked, unpack_bundle
from servewell.runtime.outputs import conform_outputs

logger = logging.getLogger(__name__)

#: What the user's code may raise that is still a failure of the model, not of servewell.
USER_FAILURES = (Exception, SystemExit)


class PythonRuntime:
    """Runs the model class of a Python model bundle, in this process."""

    platform = "python"
    may_block = True  # the user's code may sleep, do I/O or call other services

    def __init__(self, path: Path, signature: Signature | None = None) -> None:
        self.path = path
        self.signature = signature
        self._model: Any = None
        self._class_name = ""
        self._module: ModuleType | None = None
        self._release: weakref.finalize[Any, Any] | None = None

    def load(self) -> None:
        if self.signature is None:
            raise SignatureRequired("python")
        check_python_signature(self.signature)
        folder = Path(tempfile.mkdtemp(prefix="servewell-python-"))
        module_name = f"servewell_model_{uuid.uuid4().hex[:12]}"
        # Whether closed, dropped or left at exit, the folder and the module go.
        self._release = weakref.finalize(self, release, module_name, folder)
        try:
            manifest = unpack_bundle(self.path, folder)
            self._module = import_source(folder / manifest.module, module_name)
            model_class = find_model_class(self._module, manifest)
            self._class_name = model_class.__name__
            self._model = create_model(model_class, folder / ARTIFACTS, manifest.module)
        except BaseException:
            self.close()
            raise
        logger.info("loaded %s from %s", self._class_name, manifest.module)

    def warm_up(self) -> None:
        self.predict(sample_inputs(self.describe()))

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        model, who = self._require_model(), f"{self._class_name}.predict"
        try:
            returned = model.predict(dict(inputs))
        except InvalidInput:
            raise
        except USER_FAILURES as exc:
            raise ModelFailed(f"{who} raised {describe_failure(exc, self._module)}") from exc
        return conform_outputs(self.describe(), returned, who)

    def describe(self) -> Signature:
        self._require_model()
        assert self.signature is not None
        return self.signature

    def close(self) -> None:
        if self._release is not None:
            self._release()
        self._model, self._module, self._release = None, None, None

    def _require_model(self) -> Any:
        if self._model is None:
            raise RuntimeError("PythonRuntime.load() was not called")
        return self._model


def check_python_signature(signature: Signature) -> None:
    """A Python model's signature names its outputs: nothing else says what it gives."""
    if not signature.outputs:
        raise InvalidSignature(
            "a python model's signature must declare its outputs (name, datatype, shape)"
        )


def release(module_name: str, folder: Path) -> None:
    """Forget a load's module and remove its unpacked folder."""
    sys.modules.pop(module_name, None)
    remove_unpacked(folder)


def import_source(path: Path, name: str) -> ModuleType:
    """Run the file as a module of its own, called ``name``, which no other load uses: two
    versions of one file never share a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None  # a .py file always has a spec and a loader
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses, pickle and typing look classes up here
    try:
        spec.loader.exec_module(module)
    except USER_FAILURES as exc:
        sys.modules.pop(name, None)
        raise InvalidArtifact(
            f"{path.name} cannot be imported: {describe_failure(exc, module)}"
        ) from exc
    return module


def find_model_class(module: ModuleType, manifest: BundleManifest) -> type:
    """The class named in the manifest, or else the one model class the file defines."""
    file = manifest.module
    if manifest.model_class is not None:
        found = getattr(module, manifest.model_class, None)
        if not (inspect.isclass(found) and is_model_class(found)):
            raise InvalidArtifact(
                f"{file} has no model class '{manifest.model_class}' (a class with "
                f"load(self, artifacts_dir) and predict(self, inputs)); model classes: "
                f"{', '.join(model_class_names(module)) or 'none'}"
            )
        return found
    names = model_class_names(module)
    if len(names) != 1:
        raise InvalidArtifact(
            f"{file} defines {len(names)} model classes ({', '.join(names)}); name one with --class"
            if names
            else f"{file} defines no model class: a class with load(self, artifacts_dir) "
            "and predict(self, inputs)"
        )
    return getattr(module, names[0])  # type: ignore[no-any-return]


def model_class_names(module: ModuleType) -> list[str]:
    """The model classes defined in ``module`` itself (not the ones it imports)."""
    return sorted(
        name
        for name, value in vars(module).items()
        if inspect.isclass(value) and value.__module__ == module.__name__ and is_model_class(value)
    )


def is_model_class(value: type) -> bool:
    return callable(getattr(value, "load", None)) and callable(getattr(value, "predict", None))


def create_model(model_class: type, artifacts_dir: Path, file: str) -> Any:
    """An instance of ``model_class``, loaded from ``artifacts_dir``."""
    name = model_class.__name__
    module = sys.modules.get(model_class.__module__)
    try:
        model = model_class()
    except USER_FAILURES as exc:
        raise InvalidArtifact(f"{file}: {name}() raised {describe_failure(exc, module)}") from exc
    try:
        model.load(artifacts_dir)
    except USER_FAILURES as exc:
        raise InvalidArtifact(
            f"{file}: {name}.load(artifacts_dir) raised {describe_failure(exc, module)}"
        ) from exc
    return model


def describe_failure(exc: BaseException, module: ModuleType | None) -> str:
    """``"ValueError: bad weights (model.py, line 12)"``: the error, and the last line
    of the model's own file it passed through."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    source = getattr(module, "__file__", None)
    if source is None or isinstance(exc, SyntaxError):  # a SyntaxError names its line
        return text
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == source]
    return f"{text} ({Path(source).name}, line {frames[-1].lineno})" if frames else text
