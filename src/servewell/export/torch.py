"""PyTorch modules to ONNX: one exporter for the text classifier and users' modules.

:func:`export_module` wraps ``torch.onnx.export`` (the TorchScript-tracing exporter,
``dynamo=False``: the dynamo exporter needs ``onnxscript``), opset 17, which ONNX
Runtime 1.31 runs. :func:`export_torch_model` exports a module registered as format
``torch`` (:mod:`servewell.runtime.torch`) so that the ONNX file answers as the module
does under its signature:

* inputs named as the signature's, every axis 0 a dynamic batch;
* a classifier's logits become ``probabilities`` (``Softmax``) and ``label`` (``ArgMax``
  + ``Gather`` over the class labels, so string labels work too), nodes appended to the
  exported graph: the outputs skl2onnx gives and servewell serves. (Appending rather
  than wrapping the module keeps TorchScript modules exportable: the tracer cannot
  follow a scripted module called from a Python one.)
* any other module's outputs are named as the signature's outputs, in order;
* the signature travels in the file's metadata (``servewell.signature``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from servewell.core.signature import Signature
from servewell.errors import ConversionFailed, MissingDependency
from servewell.runtime.base import Array
from servewell.runtime.onnx import SIGNATURE_METADATA_KEY
from servewell.runtime.torch import module_name

ONNX_OPSET = 17
PROBABILITIES = "probabilities"
LOGITS = "servewell_logits"
LABEL = "label"


def export_module(
    module: Any,
    example_inputs: tuple[Any, ...],
    path: Path,
    *,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> Path:
    """``torch.onnx.export`` (TorchScript tracer; opset 17) with the batch axes dynamic.

    Any failure is a :class:`ConversionFailed` naming the module's class.
    """
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency("torch", "torch") from exc
    try:
        with warnings.catch_warnings():
            # The tracer's notes on Python booleans and the legacy exporter's deprecation:
            # the traced graph is checked against the module by the callers' verification.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                example_inputs,
                str(path),
                dynamo=False,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=ONNX_OPSET,
            )
    except Exception as exc:  # torch raises many kinds while tracing and exporting
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionFailed(
            f"torch.onnx.export cannot export {module_name(module)}: {first}"
        ) from exc
    return path


def export_torch_model(
    module: Any, signature: Signature, example: Mapping[str, Array], path: Path
) -> Path:
    """``module`` (in eval mode) as an ONNX file at ``path`` answering under ``signature``."""
    import onnx
    import torch

    inputs = [spec.name for spec in signature.inputs]
    classes = signature.class_labels
    outputs = [LOGITS] if classes is not None else [s.name for s in signature.outputs]
    export_module(
        module,
        tuple(torch.tensor(np.asarray(example[name])) for name in inputs),
        path,
        input_names=inputs,
        output_names=outputs,
        dynamic_axes={name: {0: "batch"} for name in inputs + outputs},
    )
    model = onnx.load(str(path))
    if classes is not None:
        _classify_logits(model, classes)
    set_signature_metadata(model, signature)
    onnx.save(model, str(path))
    return path


def set_signature_metadata(model: Any, signature: Signature) -> None:
    """Embed ``signature`` in an ``onnx.ModelProto``'s metadata (in place)."""
    kept = [entry for entry in model.metadata_props if entry.key != SIGNATURE_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = SIGNATURE_METADATA_KEY, json.dumps(signature.to_dict())


def _classify_logits(model: Any, classes: Sequence[str | int]) -> None:
    """Replace the graph's logits output by ``label`` and ``probabilities`` (in place)."""
    from onnx import TensorProto, helper

    numeric = all(isinstance(c, int) for c in classes)
    label_type = TensorProto.INT64 if numeric else TensorProto.STRING
    graph = model.graph
    values: list[Any] = (
        [int(c) for c in classes] if numeric else [str(c).encode("utf-8") for c in classes]
    )
    graph.initializer.append(
        helper.make_tensor("servewell_classes", label_type, [len(classes)], values)
    )
    graph.node.extend(
        [
            helper.make_node("Softmax", [LOGITS], [PROBABILITIES], axis=1),
            helper.make_node("ArgMax", [LOGITS], ["servewell_class_index"], axis=1, keepdims=0),
            helper.make_node("Gather", ["servewell_classes", "servewell_class_index"], [LABEL]),
        ]
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(LABEL, label_type, ["batch"]),
            helper.make_tensor_value_info(
                PROBABILITIES, TensorProto.FLOAT, ["batch", len(classes)]
            ),
        ]
    )
