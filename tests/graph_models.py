"""Classifier graphs built with onnx.helper, no converter in the way (the optimize tests'
fixtures): a scaler and a one-hidden-layer MLP in float32 or float64, the rows it labels
itself, and the signature to register it with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from onnx import TensorProto, helper, numpy_helper

from servewell.core.signature import Signature

FEATURES = ("x1", "x2", "x3", "x4")
CLASSES = (0, 1, 2)
#: Features on scales 1 to 1000, as a table's columns are.
MEANS = np.array([0.0, 10.0, 100.0, 0.0])
SCALES = np.array([1.0, 10.0, 1000.0, 0.1])


def mlp_classifier(
    path: Path, hidden: int = 256, dtype: type = np.float64, dead_outlier: bool = False
) -> Path:
    """A 4-``hidden``-3 MLP behind a scaler, every tensor in ``dtype``.

    ``dead_outlier``: one hidden unit gets input weights of 1000 and a bias that keeps it
    at 0 for any input. In float it changes nothing; one int8 scale for the whole first
    layer is taken from that 1000, so every real weight (|w| < 4) rounds to 0.
    """
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(4, hidden))
    b1 = rng.normal(size=(1, hidden)) * 0.1
    if dead_outlier:
        w1[:, -1], b1[0, -1] = 1000.0, -1e7
    kind = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    tensors = {"mean": MEANS, "scale": SCALES, "w1": w1, "b1": b1}
    tensors["w2"] = rng.normal(size=(hidden, len(CLASSES))) * 0.2
    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["input", "mean"], ["centred"]),
            helper.make_node("Div", ["centred", "scale"], ["scaled"]),
            helper.make_node("MatMul", ["scaled", "w1"], ["h"]),
            helper.make_node("Add", ["h", "b1"], ["hb"]),
            helper.make_node("Relu", ["hb"], ["a"]),
            helper.make_node("MatMul", ["a", "w2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
        ],
        "mlp_classifier",
        [helper.make_tensor_value_info("input", kind, [None, len(FEATURES)])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", kind, [None, len(CLASSES)]),
        ],
        [numpy_helper.from_array(v.astype(dtype), name) for name, v in tensors.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def self_labelled_rows(model: Path, path: Path, rows: int = 240, dtype: type = np.float64) -> Path:
    """``rows`` rows (columns x1..x4 and ``y``) labelled by ``model`` itself: its accuracy
    on them is 1.0. Keep ``rows`` at most 256 (optimize's prediction chunk) when the rows
    are predicted again in one batch: dynamic int8 takes activation scales per batch."""
    features = np.random.default_rng(1).normal(MEANS, SCALES, size=(rows, len(FEATURES)))
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    frame = pd.DataFrame(features, columns=list(FEATURES))
    frame["y"] = session.run(["label"], {"input": features.astype(dtype)})[0]
    frame.to_csv(path, index=False)
    return path


def signature(dtype: type = np.float64) -> Signature:
    datatype = "FP64" if dtype == np.float64 else "FP32"
    return Signature.from_dict(
        {
            "inputs": [{"name": "input", "datatype": datatype, "shape": [-1, len(FEATURES)]}],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": datatype, "shape": [-1, len(CLASSES)]},
            ],
            "feature_names": list(FEATURES),
            "class_labels": list(CLASSES),
        }
    )
