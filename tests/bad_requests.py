"""Every way a request can be wrong, as data: the path, body and headers of a bad request,
the status it must get and what its error must say. ``test_bad_input`` checks the
answers; ``test_equivalence`` checks that every way of serving gives the same ones."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from serving_models import ECHO_VALUES

ROW = [5.1, 3.5, 1.4, 0.2]
FEATURES = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
IRIS_V2 = "/v2/models/iris/infer"
IRIS_REST = "/v1/models/iris:predict"


def _v2(**tensor: Any) -> dict[str, Any]:
    return {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": ROW, **tensor}]
    }


def _binary(
    header: dict[str, Any],
    raw: bytes,
    header_length: int | None = None,
    path: str = IRIS_V2,
    says: str = "",
) -> Case:
    encoded = orjson.dumps(header)
    length = str(len(encoded) if header_length is None else header_length)
    return Case(
        path,
        content=encoded + raw,
        headers={"Inference-Header-Content-Length": length},
        says=says,
    )


@dataclass
class Case:
    path: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 400
    says: str = ""


FLOATS = np.array([ROW], dtype=np.float32).tobytes()
NAN_ROW = np.array([[1.0, np.nan, 1.0, 1.0]], dtype=np.float32).tobytes()
BINARY_INPUT = {"name": "input", "datatype": "FP32", "shape": [1, 4]}

CASES: dict[str, Case] = {
    "rest malformed json": Case(IRIS_REST, content=b'{"instances": [[1, 2', says="not valid JSON"),
    "v2 malformed json": Case(IRIS_V2, content=b"{inputs", says="not valid JSON"),
    "rest wrong content type": Case(
        IRIS_REST, content=b"a=1", headers={"Content-Type": "text/plain"}, status=415,
        says="content type 'text/plain'",
    ),
    "v2 form content type": Case(
        IRIS_V2, content=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"},
        status=415, says="send application/json",
    ),
    "rest body not an object": Case(IRIS_REST, json=[ROW], says="JSON object"),
    "rest no instances": Case(IRIS_REST, json={"rows": [ROW]}, says="'instances'"),
    "rest instances not a list": Case(IRIS_REST, json={"instances": 5}, says="list of rows"),
    "v2 no inputs": Case(IRIS_V2, json={"id": "1"}, says="'inputs' must be a non-empty list"),
    "v2 input without data": Case(
        IRIS_V2, json={"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4]}]},
        says="input 'input' has no 'data'",
    ),
    "v2 input without name": Case(IRIS_V2, json={"inputs": [{"data": ROW}]}, says="'name'"),
    "v2 unknown input": Case(
        IRIS_V2, json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]},
        says="unknown input(s) 'x'",
    ),
    "rest wrong feature count": Case(
        IRIS_REST, json={"instances": [[1.0, 2.0, 3.0]]}, says="expects 4 values per row"
    ),
    "rest ragged rows": Case(
        IRIS_REST, json={"instances": [ROW, [1.0]]}, says="not a rectangular array"
    ),
    "rest missing feature": Case(
        IRIS_REST, json={"instances": [{"sepal_length": 1.0}]}, says="missing 3 feature(s)"
    ),
    "rest unknown feature": Case(
        IRIS_REST, json={"instances": [{**FEATURES, "colour": 1}]},
        says="unknown feature(s): 'colour'",
    ),
    "v2 wrong shape": Case(
        IRIS_V2, json=_v2(shape=[1, 5], data=[*ROW, 1.0]), says="expects 4 values per row"
    ),
    "v2 shape and data disagree": Case(IRIS_V2, json=_v2(shape=[1, 4], data=ROW[:3]),
                                       says="needs 4 values"),
    "v2 bad shape": Case(IRIS_V2, json=_v2(shape=[1, "4"]), says="'shape' must be a list"),
    "v2 unknown datatype": Case(IRIS_V2, json=_v2(datatype="FLOAT"), says="unknown datatype"),
    "v2 bytes for numbers": Case(
        IRIS_V2, json=_v2(datatype="BYTES", data=["a", "b", "c", "d"]),
        says="input 'input' was sent as BYTES; the model takes FP32",
    ),
    "v2 FP16 for FP32": Case(
        IRIS_V2, json=_v2(datatype="FP16"),
        says="input 'input' was sent as FP16; the model takes FP32 "
        '(send it with "datatype": "FP32")',
    ),
    "v2 UINT64 for FP32": Case(
        IRIS_V2, json=_v2(datatype="UINT64", data=[5, 3, 1, 0]),
        says="input 'input' was sent as UINT64; the model takes FP32",
    ),
    "v2 binary FP16 for FP32": _binary(
        {"inputs": [{**BINARY_INPUT, "datatype": "FP16", "parameters": {"binary_data_size": 8}}]},
        np.array([ROW], dtype=np.float16).tobytes(),
        says="input 'input' was sent as FP16; the model takes FP32",
    ),
    "v2 FP64 for FP32": Case(
        IRIS_V2, json=_v2(datatype="FP64"), says="input 'input' was sent as FP64",
    ),
    "rest strings for numbers": Case(
        IRIS_REST, json={"instances": [["5.1", 3.5, 1.4, 0.2]]},
        says="expects FP32 numbers; got text '5.1' at [0, 0]",
    ),
    "v2 strings for numbers": Case(
        IRIS_V2, json=_v2(data=[5.1, "x", 1.4, 0.2]), says="'x' at [1]"
    ),
    "rest booleans for numbers": Case(
        IRIS_REST, json={"instances": [[True, False, True, True]]}, says="got booleans"
    ),
    "rest infinity": Case(IRIS_REST, content=b'{"instances": [[1e999, 1, 1, 1]]}',
                          says="infinity"),
    "v2 binary NaN": _binary(
        {"inputs": [{**BINARY_INPUT, "parameters": {"binary_data_size": 16}}]}, NAN_ROW
    ),
    "rest empty batch": Case(IRIS_REST, json={"instances": []}, says="empty batch"),
    "v2 empty batch": Case(IRIS_V2, json=_v2(shape=[0, 4], data=[]), says="empty batch"),
    "v2 integer overflow": Case(
        "/v2/models/echo/infer",
        json={"inputs": [{"name": "in_INT8", "datatype": "INT8", "shape": [1, 2],
                          "data": [1, 300]}]},
        says="outside the INT8 range",
    ),
    "v2 unknown output": Case(
        IRIS_V2, json={**_v2(), "outputs": [{"name": "colour"}]}, says="unknown output 'colour'"
    ),
    "v2 duplicate input": Case(
        IRIS_V2, json={"inputs": _v2()["inputs"] * 2}, says="given twice"
    ),
    "v2 id not a string": Case(IRIS_V2, json={**_v2(), "id": 5}, says="'id' must be a string"),
    "binary header longer than body": _binary(
        {"inputs": [{**BINARY_INPUT, "parameters": {"binary_data_size": 16}}]}, FLOATS,
        header_length=10_000,
    ),
    "binary header length not a number": Case(
        IRIS_V2, content=b"{}", headers={"Inference-Header-Content-Length": "ten"},
        says="must be a non-negative integer",
    ),
    "binary size over what is left": _binary(
        {"inputs": [{**BINARY_INPUT, "parameters": {"binary_data_size": 32}}]}, FLOATS,
    ),
    "binary bytes left over": _binary(
        {"inputs": [{**BINARY_INPUT, "parameters": {"binary_data_size": 16}}]}, FLOATS + b"xx",
    ),
    "binary size wrong for shape": _binary(
        {"inputs": [{**BINARY_INPUT, "parameters": {"binary_data_size": 12}}]}, FLOATS[:12],
    ),
    "binary BYTES cut short": _binary(
        {"inputs": [{"name": "in_BYTES", "datatype": "BYTES", "shape": [1, 2],
                     "parameters": {"binary_data_size": 6}}]},
        struct.pack("<I", 9) + b"ab", path="/v2/models/echo/infer",
    ),
    "binary BYTES not UTF-8": _binary(
        {"inputs": [
            *({"name": f"in_{datatype}", "datatype": datatype, "shape": [1, 2], "data": values}
              for datatype, values in ECHO_VALUES.items() if datatype != "BYTES"),
            {"name": "in_BYTES", "datatype": "BYTES", "shape": [1, 2],
             "parameters": {"binary_data_size": 12}},
        ]},
        struct.pack("<I", 2) + b"\xff\xfe" + struct.pack("<I", 2) + b"ok",
        path="/v2/models/echo/infer", says="input 'in_BYTES' item 0 is not valid UTF-8",
    ),
    "binary data and json data": _binary(
        {"inputs": [{**BINARY_INPUT, "data": ROW, "parameters": {"binary_data_size": 16}}]},
        FLOATS,
    ),
    "unknown model rest": Case("/v1/models/nope:predict", json={"instances": [ROW]},
                               status=404, says="model 'nope' is not served"),
    "unknown model v2": Case("/v2/models/nope/infer", json=_v2(), status=404),
    "unknown version": Case("/v2/models/iris/versions/9/infer", json=_v2(), status=404,
                            says="served versions: 1, 2"),
    "version not a number": Case("/v1/models/iris/versions/latest:predict",
                                 json={"instances": [ROW]}, status=404),
    "version past any integer column": Case(
        "/v1/models/iris/versions/99999999999999999999999:predict", json={"instances": [ROW]},
        status=404, says="no version '99999999999999999999999'",
    ),
    "version in superscript digits": Case(
        "/v2/models/iris/versions/%C2%B2/infer", json=_v2(), status=404, says="no version '\u00b2'"
    ),
}  # fmt: skip
