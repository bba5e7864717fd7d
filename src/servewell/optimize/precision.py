"""Narrowing a float64 graph to float32, so that the quantizers have weights to work on.

A model trained on a table of float64 columns converts to a graph that computes in
float64: DOUBLE inputs, DOUBLE weights, Casts to DOUBLE. ONNX Runtime's int8 quantizers
and its float16 converter only touch FLOAT tensors, so such a graph, a MatMul in every
layer, has "nothing to quantize". :func:`narrow_to_float32` rewrites every DOUBLE tensor
inside the graph (initializers, constants, tensor attributes, Casts, declared types, and
the same inside sub-graphs) to FLOAT, and keeps the graph's own inputs and outputs as
they were, with a Cast at each: the signature, and what a client sends, do not change.

Whether float32 is precise enough for a model is not assumed here: ``optimize`` compares
the narrowed graph with the source on the evaluation rows and reports it, and the gate
judges the quantized result. Nothing is narrowed that does not hold float64.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from servewell.errors import ConversionFailed

_DOUBLE = 11  # onnx.TensorProto.DOUBLE
_FLOAT = 1  # onnx.TensorProto.FLOAT
#: Integer attributes that name an element type (Cast's ``to``, EyeLike's ``dtype``, …).
_TYPE_ATTRIBUTES = frozenset({"to", "dtype"})
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Suffix of a float32 tensor standing in for a float64 graph input or output.
_SUFFIX = "__float32"


@dataclass(frozen=True, slots=True)
class Narrowing:
    """What :func:`narrow_to_float32` changed."""

    tensors: int
    """DOUBLE tensors rewritten as FLOAT: initializers, constants, tensor attributes."""
    inputs: tuple[str, ...]
    """Graph inputs that stay float64 and are cast to float32 on entry."""
    outputs: tuple[str, ...]
    """Graph outputs computed in float32 and cast back to float64 on exit."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": "FP64",
            "to": "FP32",
            "tensors": self.tensors,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
        }


def narrow_to_float32(source: Path, target: Path) -> Narrowing | None:
    """Write ``source`` computing in float32 to ``target``; None (nothing written) when
    ``source`` has no float64 in it."""
    import onnx

    model = onnx.load(str(source))
    if not computes_in_float64(model):
        return None
    tensors = sum(_narrow_body(graph) for graph in _graphs(model.graph))
    outputs = _cast_outputs_back(model.graph)
    inputs = _cast_inputs_on_entry(model.graph)
    for graph in _graphs(model.graph):
        if graph is not model.graph:
            _narrow_interface(graph)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ConversionFailed(
            f"narrowing float64 to float32 made an invalid graph: {exc}"
        ) from exc
    onnx.save(model, str(target))
    return Narrowing(tensors=tensors, inputs=inputs, outputs=outputs)


def computes_in_float64(model: Any) -> bool:
    """Whether an ONNX model holds or computes float64 tensors anywhere but at its own
    inputs and outputs (read through a Cast, written by one: a narrowed graph)."""
    top = model.graph
    outputs = {value.name for value in top.output}
    doubles = {value.name for value in top.input if _elem_type(value.type) == _DOUBLE}
    for node in top.node:
        is_cast = node.op_type == "Cast"
        if not is_cast and doubles.intersection(node.input):
            return True
        if is_cast and outputs.issuperset(node.output):
            continue  # the Cast back to a float64 output
        if any(_attribute_holds_double(a) for a in node.attribute):
            return True
    if any(init.data_type == _DOUBLE for init in top.initializer):
        return True
    if any(_elem_type(value.type) == _DOUBLE for value in top.value_info):
        return True
    return any(_holds_double(graph) for graph in _graphs(top) if graph is not top)


def _graphs(graph: Any) -> Iterator[Any]:
    """``graph`` and every sub-graph of its nodes (If branches, Loop and Scan bodies)."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            for sub in (*([attribute.g] if attribute.HasField("g") else []), *attribute.graphs):
                yield from _graphs(sub)


def _holds_double(graph: Any) -> bool:
    typed = (*graph.input, *graph.output, *graph.value_info)
    return (
        any(init.data_type == _DOUBLE for init in graph.initializer)
        or any(_elem_type(value.type) == _DOUBLE for value in typed)
        or any(_attribute_holds_double(a) for node in graph.node for a in node.attribute)
    )


def _attribute_holds_double(attribute: Any) -> bool:
    if attribute.name in _TYPE_ATTRIBUTES and attribute.i == _DOUBLE:
        return True
    tensors = (*([attribute.t] if attribute.HasField("t") else []), *attribute.tensors)
    return any(tensor.data_type == _DOUBLE for tensor in tensors)


def _narrow_body(graph: Any) -> int:
    """Rewrite ``graph``'s own DOUBLE tensors, attributes and declared types; not its
    inputs and outputs (see the callers) nor its sub-graphs (visited on their own)."""
    count = 0
    for init in graph.initializer:
        count += _narrow_tensor(init)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name in _TYPE_ATTRIBUTES and attribute.i == _DOUBLE:
                attribute.i = _FLOAT
            for tensor in (*([attribute.t] if attribute.HasField("t") else []), *attribute.tensors):
                count += _narrow_tensor(tensor)
    for value in graph.value_info:
        _narrow_type(value.type)
    return count


def _narrow_interface(graph: Any) -> None:
    """A sub-graph's inputs and outputs are inside the model: narrowed in place."""
    for value in (*graph.input, *graph.output):
        _narrow_type(value.type)


def _narrow_tensor(tensor: Any) -> int:
    from onnx import numpy_helper

    if tensor.data_type != _DOUBLE:
        return 0
    values = numpy_helper.to_array(tensor)
    finite = values[np.isfinite(values)]
    if finite.size and float(np.max(np.abs(finite))) > _FLOAT32_MAX:
        raise ConversionFailed(
            f"cannot narrow float64 to float32: the tensor '{tensor.name}' holds values "
            f"beyond float32's range (|x| up to {float(np.max(np.abs(finite))):.3g})"
        )
    tensor.CopyFrom(numpy_helper.from_array(values.astype(np.float32), tensor.name))
    return 1


def _cast_outputs_back(graph: Any) -> tuple[str, ...]:
    """Each DOUBLE graph output is computed as float32 under another name, then cast."""
    import onnx

    inputs = {value.name for value in graph.input}
    cast = []
    for output in graph.output:
        if _elem_type(output.type) != _DOUBLE or output.name in inputs:
            continue  # a graph input passed through stays what it was
        narrow = output.name + _SUFFIX
        _rename(graph, output.name, narrow)
        graph.node.append(
            onnx.helper.make_node("Cast", [narrow], [output.name], to=_DOUBLE, name=narrow)
        )
        cast.append(output.name)
    return tuple(cast)


def _cast_inputs_on_entry(graph: Any) -> tuple[str, ...]:
    """Each DOUBLE graph input is cast to float32 first, and read under the new name."""
    import onnx

    initializers = {init.name for init in graph.initializer}
    cast: list[str] = []
    for value in graph.input:
        if _elem_type(value.type) != _DOUBLE or value.name in initializers:
            continue
        narrow = value.name + _SUFFIX
        _rename_reads(graph, value.name, narrow)
        graph.node.insert(
            len(cast), onnx.helper.make_node("Cast", [value.name], [narrow], to=_FLOAT, name=narrow)
        )
        cast.append(value.name)
    return tuple(cast)


def _rename(graph: Any, old: str, new: str) -> None:
    """Every producer and reader of ``old`` in ``graph`` (and its sub-graphs) uses ``new``."""
    for named in (*graph.initializer, *graph.value_info):
        if named.name == old:
            named.name = new
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    _rename_reads(graph, old, new)


def _rename_reads(graph: Any, old: str, new: str) -> None:
    for sub in _graphs(graph):
        for node in sub.node:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new
        for output in sub.output:
            if sub is not graph and output.name == old:
                output.name = new  # a sub-graph passing an outer tensor through


def _elem_type(value_type: Any) -> int:
    """The element type of a tensor type (or of the tensors in a sequence or optional)."""
    kind = value_type.WhichOneof("value")
    if kind == "tensor_type":
        return int(value_type.tensor_type.elem_type)
    if kind == "sequence_type":
        return _elem_type(value_type.sequence_type.elem_type)
    if kind == "optional_type":
        return _elem_type(value_type.optional_type.elem_type)
    return 0


def _narrow_type(value_type: Any) -> None:
    kind = value_type.WhichOneof("value")
    if kind == "tensor_type" and value_type.tensor_type.elem_type == _DOUBLE:
        value_type.tensor_type.elem_type = _FLOAT
    elif kind == "sequence_type":
        _narrow_type(value_type.sequence_type.elem_type)
    elif kind == "optional_type":
        _narrow_type(value_type.optional_type.elem_type)
