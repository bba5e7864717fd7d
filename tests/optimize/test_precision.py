"""Narrowing float64 graphs to float32: built here with onnx.helper, so every kind of
DOUBLE tensor a converter may emit is covered, not one converter's output; run on ONNX
Runtime before and after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from servewell.errors import ConversionFailed
from servewell.optimize.precision import computes_in_float64, narrow_to_float32

RNG = np.random.default_rng(0)
ROWS = 64


def _double(name: str, values: Any) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.float64), name)


def _mlp_graph(path: Path, weight_scale: float = 1.0) -> Path:
    """A scaler + two-layer MLP in float64, as skl2onnx converts a table's pipeline: a
    DOUBLE input, an INT64 input cast to DOUBLE, DOUBLE weights, a DOUBLE Constant node,
    DOUBLE probabilities and an INT64 label out."""
    nodes = [
        helper.make_node("Cast", ["count"], ["count_double"], to=TensorProto.DOUBLE),
        helper.make_node("Concat", ["x", "count_double"], ["merged"], axis=1),
        helper.make_node("Sub", ["merged", "mean"], ["centred"]),
        helper.make_node("Constant", [], ["scale"], value=_double("scale", [2.0, 0.5, 1.0, 3.0])),
        helper.make_node("Div", ["centred", "scale"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "w1"], ["h1"]),
        helper.make_node("Add", ["h1", "b1"], ["h1b"]),
        helper.make_node("Relu", ["h1b"], ["a1"]),
        helper.make_node("MatMul", ["a1", "w2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
    ]
    initializers = [
        _double("mean", RNG.normal(size=4)),
        _double("w1", RNG.normal(size=(4, 16)) * weight_scale),
        _double("b1", RNG.normal(size=(1, 16))),
        _double("w2", RNG.normal(size=(16, 3))),
    ]
    graph = helper.make_graph(
        nodes,
        "double_mlp",
        [
            helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 3]),
            helper.make_tensor_value_info("count", TensorProto.INT64, [None, 1]),
        ],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, 3]),
        ],
        initializers,
        value_info=[helper.make_tensor_value_info("h1", TensorProto.DOUBLE, [None, 16])],
    )
    return _save(graph, path)


def _branching_graph(path: Path) -> Path:
    """A float64 graph whose If branches hold float64 constants and read the outer input."""

    def branch(name: str, offset: float) -> onnx.GraphProto:
        return helper.make_graph(
            [
                helper.make_node("Constant", [], [f"{name}_c"], value=_double("c", [offset])),
                helper.make_node("Add", ["x", f"{name}_c"], [f"{name}_out"]),
            ],
            name,
            [],
            [helper.make_tensor_value_info(f"{name}_out", TensorProto.DOUBLE, [None, 3])],
        )

    nodes = [
        helper.make_node(
            "If", ["flag"], ["y"], then_branch=branch("then", 1.5), else_branch=branch("else", -2)
        )
    ]
    graph = helper.make_graph(
        nodes,
        "branching",
        [
            helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 3]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 3])],
    )
    return _save(graph, path)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _run(path: Path, feeds: dict[str, Any]) -> list[Any]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return list(session.run(None, feeds))


def _declared(path: Path) -> dict[str, int]:
    graph = onnx.load(str(path)).graph
    return {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.output)}


def _mlp_feeds() -> dict[str, Any]:
    return {
        "x": RNG.normal(size=(ROWS, 3)) * [1, 100, 0.01],
        "count": RNG.integers(0, 40, size=(ROWS, 1)),
    }


def test_a_float64_mlp_computes_in_float32_with_its_inputs_and_outputs_kept(
    tmp_path: Path,
) -> None:
    source = _mlp_graph(tmp_path / "double.onnx")
    assert computes_in_float64(onnx.load(str(source)))

    narrowing = narrow_to_float32(source, tmp_path / "float.onnx")

    assert narrowing is not None
    assert narrowing.tensors == 5  # four initializers and the Constant's value
    assert narrowing.inputs == ("x",)
    assert narrowing.outputs == ("probabilities",)
    assert _declared(tmp_path / "float.onnx") == _declared(source)  # what clients send
    model = onnx.load(str(tmp_path / "float.onnx"))
    assert not computes_in_float64(model)
    assert {init.data_type for init in model.graph.initializer} == {TensorProto.FLOAT}
    feeds = _mlp_feeds()
    (label64, p64), (label32, p32) = _run(source, feeds), _run(tmp_path / "float.onnx", feeds)
    assert p32.dtype == np.float64  # cast back: the signature's FP64 output holds
    np.testing.assert_allclose(p32, p64, atol=1e-5)
    assert np.mean(label32 == label64) >= 0.98  # a near-tie may flip; the gate judges it


def test_a_narrowed_graph_is_not_narrowed_again(tmp_path: Path) -> None:
    narrow_to_float32(_mlp_graph(tmp_path / "double.onnx"), tmp_path / "float.onnx")
    assert narrow_to_float32(tmp_path / "float.onnx", tmp_path / "again.onnx") is None
    assert not (tmp_path / "again.onnx").exists()


def test_a_float32_graph_is_left_alone(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "float",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(np.eye(2, dtype=np.float32), "w")],
    )
    source = _save(graph, tmp_path / "float.onnx")
    assert narrow_to_float32(source, tmp_path / "out.onnx") is None


def test_sub_graphs_are_narrowed_and_read_the_cast_input(tmp_path: Path) -> None:
    source = _branching_graph(tmp_path / "double.onnx")

    narrowing = narrow_to_float32(source, tmp_path / "float.onnx")

    assert narrowing is not None
    assert narrowing.tensors == 2  # one constant in each branch
    assert not computes_in_float64(onnx.load(str(tmp_path / "float.onnx")))
    x = RNG.normal(size=(5, 3))
    for flag in (True, False):
        feeds = {"x": x, "flag": np.array(flag)}
        (before,), (after,) = _run(source, feeds), _run(tmp_path / "float.onnx", feeds)
        assert after.dtype == np.float64
        np.testing.assert_allclose(after, before, rtol=1e-6)


def test_an_input_passed_straight_to_an_output_stays_float64(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["doubled"])],
        "passthrough",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 2])],
        [
            helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 2]),
            helper.make_tensor_value_info("doubled", TensorProto.DOUBLE, [None, 2]),
        ],
        [_double("two", [2.0, 2.0])],
    )
    source = _save(graph, tmp_path / "double.onnx")
    narrowing = narrow_to_float32(source, tmp_path / "float.onnx")
    assert narrowing is not None
    assert narrowing.outputs == ("doubled",)
    x = np.array([[1.0, 2.0]])
    echoed, doubled = _run(tmp_path / "float.onnx", {"x": x})
    assert echoed.dtype == doubled.dtype == np.float64
    np.testing.assert_array_equal(echoed, x)
    np.testing.assert_array_equal(doubled, 2 * x)


def test_a_weight_beyond_float32_range_is_refused(tmp_path: Path) -> None:
    source = _mlp_graph(tmp_path / "double.onnx", weight_scale=1e300)
    with pytest.raises(ConversionFailed, match=r"'w1' holds values beyond float32's range"):
        narrow_to_float32(source, tmp_path / "float.onnx")
    assert not (tmp_path / "float.onnx").exists()
