"""PyTorch modules saved by the user, run in-process on the CPU (format ``torch``).

Two kinds of file are accepted, both usually named ``.pt`` or ``.pth``; which one a
file is, is read from its contents (:func:`is_torchscript`), never from its name:

* **TorchScript** (``torch.jit.save(torch.jit.script(m) or torch.jit.trace(m, x))``):
  loaded with ``torch.jit.load``, whose archive holds TorchScript code and tensors and
  whose loader builds no arbitrary Python objects. Needs no ``--trust``. (PyTorch 2.9+
  marks TorchScript deprecated in favour of ``torch.export``; it still saves and loads.)
* **A whole pickled module** (``torch.save(module)``): loaded with
  ``torch.load(weights_only=False)``, which unpickles, so runs arbitrary code, and needs
  the module's class importable here. Registered only with ``--trust``, exactly as a
  scikit-learn pickle. A bare ``state_dict`` is refused: it holds no module to run.

A module does not describe its inputs, so a signature is required
(:class:`~servewell.errors.SignatureRequired` otherwise). ``forward`` takes the
signature's inputs as tensors, positionally, in the signature's order. What it returns:

* with ``class_labels`` in the signature (a classifier), **logits** ``[rows, classes]``
  in ``class_labels`` order; the runtime answers ``label`` (the class of the highest
  logit) and ``probabilities`` (their softmax), the outputs such a signature declares,
  so a module and its ONNX export answer alike;
* otherwise one tensor or a tuple of tensors, the signature's outputs in order.

Inference runs under ``torch.no_grad`` (not ``inference_mode``: a TorchScript module
exported to ONNX once rejects inference tensors) on the module in eval mode, on the CPU. Needs the
``torch`` package: ``pip install 'servewell[torch]'``.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from servewell.core.datatypes import to_numpy_dtype
from servewell.core.signature import Signature
from servewell.errors import (
    InvalidArtifact,
    InvalidInput,
    InvalidSignature,
    MissingDependency,
    ModelFailed,
    SignatureRequired,
)
from servewell.runtime.base import Array, sample_inputs

CLASSIFIER_OUTPUTS = ("label", "probabilities")


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with a ``code/`` folder).

    ``torch.save`` writes a zip too, but with only ``data.pkl`` and tensors in it; a
    TorchScript archive also has the module's TorchScript source under ``code/``. The
    runtime loads a file this says is TorchScript with ``torch.jit.load`` only, so a
    file that merely looks like one is never unpickled.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return any(_is_code_entry(name) for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _is_code_entry(name: str) -> bool:
    parts = name.split("/")
    return len(parts) > 2 and parts[1] == "code"


class TorchRuntime:
    """Runs a TorchScript or pickled ``torch.nn.Module`` on the CPU."""

    platform = "pytorch"
    may_block = False

    def __init__(self, path: Path, signature: Signature | None = None) -> None:
        self.path = path
        self.signature = signature
        self._module: Any = None

    def load(self) -> None:
        if self.signature is None:
            raise SignatureRequired("torch")
        check_torch_signature(self.signature)
        module = load_module(self.path)
        module.eval()
        self._module = module

    @property
    def module(self) -> Any:
        """The loaded module (for export)."""
        if self._module is None:
            raise RuntimeError("TorchRuntime.load() was not called")
        return self._module

    def warm_up(self) -> None:
        self.predict(sample_inputs(self.describe()))

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        import torch

        module, signature = self.module, self.describe()
        arguments = [_to_tensor(inputs[spec.name], spec.name) for spec in signature.inputs]
        try:
            with torch.no_grad():
                returned = module(*arguments)
        except (RuntimeError, TypeError, ValueError, IndexError) as exc:
            raise ModelFailed(f"{module_name(module)}.forward failed: {_first_line(exc)}") from exc
        tensors = returned if isinstance(returned, tuple | list) else (returned,)
        arrays = [_to_array(tensor, module) for tensor in tensors]
        if signature.class_labels is not None:
            return classify(arrays[0], signature.class_labels, module)
        return _named_outputs(arrays, signature, module)

    def describe(self) -> Signature:
        self.module  # noqa: B018 - raises unless loaded
        assert self.signature is not None
        return self.signature

    def close(self) -> None:
        self._module = None


def load_module(path: Path) -> Any:
    """The module in ``path``: TorchScript via ``torch.jit.load``, else ``torch.load``."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency("torch", "torch") from exc
    if is_torchscript(path):
        try:
            with warnings.catch_warnings():
                # torch 2.9+ deprecates TorchScript in favour of torch.export; it still loads.
                warnings.filterwarnings(
                    "ignore", "`torch.jit.load` is deprecated", DeprecationWarning
                )
                return torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # torch raises RuntimeError, ValueError, ... on bad archives
            raise InvalidArtifact(
                f"{path.name} is not a loadable TorchScript archive: {_first_line(exc)}"
            ) from exc
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=False)
    except (ModuleNotFoundError, AttributeError, ImportError) as exc:
        raise InvalidArtifact(f"{path.name} needs code that is not installed here: {exc}") from exc
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, KeyError) as exc:
        raise InvalidArtifact(
            f"{path.name} is not a readable torch.save or TorchScript file "
            f"({_first_line(exc) if str(exc) else 'truncated'})"
        ) from exc
    if not isinstance(loaded, torch.nn.Module):
        raise InvalidArtifact(
            f"{path.name} holds a {type(loaded).__name__}, not a module; save the whole "
            "module (torch.save(module)) or a TorchScript archive (torch.jit.save)"
        )
    return loaded


def check_torch_signature(signature: Signature) -> None:
    """A classifier's signature declares ``label`` and ``probabilities``, nothing else."""
    names = tuple(spec.name for spec in signature.outputs)
    if signature.class_labels is not None and set(names) != set(CLASSIFIER_OUTPUTS):
        raise InvalidSignature(
            "a torch classifier's signature (one with class_labels) has the outputs "
            f"'label' and 'probabilities', not {list(names)}"
        )
    if signature.class_labels is None and not names:
        raise InvalidSignature("a torch model's signature must name its outputs")


def classify(logits: Array, classes: Sequence[str | int], module: Any) -> dict[str, Array]:
    """Logits ``[rows, classes]`` -> the class of the highest one, and their softmax."""
    if logits.ndim != 2 or logits.shape[1] != len(classes):
        raise ModelFailed(
            f"{module_name(module)} returned logits of shape {list(logits.shape)}, but its "
            f"signature lists {len(classes)} class_labels: expected [rows, {len(classes)}]"
        )
    scores = logits.astype(np.float64)
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    probabilities = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
    indexes = np.argmax(scores, axis=1)
    if all(isinstance(c, int) for c in classes):
        labels = np.array([classes[i] for i in indexes], dtype=np.int64)
    else:
        labels = np.array([str(classes[i]).encode("utf-8") for i in indexes], dtype=np.object_)
    return {"label": labels, "probabilities": probabilities}


def module_name(module: Any) -> str:
    """The class name the user wrote (a TorchScript module keeps it as ``original_name``)."""
    return str(getattr(module, "original_name", None) or type(module).__name__)


def _named_outputs(arrays: list[Array], signature: Signature, module: Any) -> dict[str, Array]:
    if len(arrays) != len(signature.outputs):
        raise ModelFailed(
            f"{module_name(module)} returned {len(arrays)} tensor(s), but its signature "
            f"names {len(signature.outputs)} output(s)"
        )
    return {
        spec.name: array.astype(to_numpy_dtype(spec.datatype), copy=False)
        for spec, array in zip(signature.outputs, arrays, strict=True)
    }


def _to_tensor(array: Array, name: str) -> Any:
    import torch

    if array.dtype == np.object_:
        raise InvalidInput(f"input '{name}' must be numbers for a torch model", input_name=name)
    return torch.tensor(array)  # a copy: request arrays may be read-only views


def _to_array(value: Any, module: Any) -> Array:
    import torch

    if not isinstance(value, torch.Tensor):
        raise ModelFailed(
            f"{module_name(module)}.forward returned a {type(value).__name__}, not tensors"
        )
    return np.asarray(value.detach().cpu().numpy())


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
