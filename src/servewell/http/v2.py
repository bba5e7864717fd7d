"""Open Inference Protocol (KServe V2) adapter, with Triton's binary tensor data extension.

A body is JSON, or, when ``Inference-Header-Content-Length`` is set, that many bytes of
JSON followed by the raw bytes of each input that has ``parameters.binary_data_size``,
in the order of ``inputs``. Outputs go back as binary when the request asks for it
(``binary_data_output`` for all, ``binary_data`` per output).
"""

from __future__ import annotations

from typing import Any

import orjson

from servewell.core import codec
from servewell.core.codec import HEADER_LENGTH
from servewell.core.datatypes import from_numpy_dtype
from servewell.core.inference import InferRequest, InferResponse
from servewell.core.ref import ModelRef
from servewell.errors import InvalidInput
from servewell.http.problems import to_reply
from servewell.http.wire import check_json, load_json
from servewell.serving.call import Decoded
from servewell.serving.deployment import Deployment
from servewell.serving.reply import JSON, NUMPY_JSON, OCTET_STREAM, Reply

ALL_OUTPUTS = "*"

#: Extensions listed in the server metadata.
EXTENSIONS = ["binary_tensor_data", "model_repository"]


class V2Codec:
    """The gateway's V2 codec (``serving.gateway.Codec``)."""

    protocol = "v2"

    def __init__(self, max_json_depth: int = 64) -> None:
        self.max_json_depth = max_json_depth

    def decode(
        self, ref: ModelRef, deployment: Deployment, body: bytes, headers: dict[bytes, bytes]
    ) -> Decoded:
        """An inference request from a V2 body (JSON, or JSON plus binary tensors); its
        options: the outputs to send as binary data (all of them, with ``"*"``)."""
        return decode_request(
            ref,
            body,
            headers.get(b"content-type"),
            headers.get(HEADER_LENGTH),
            self.max_json_depth,
            nullable=frozenset(s.name for s in deployment.signature.inputs if s.nullable),
        )

    def encode(self, decoded: Decoded, response: InferResponse, deployment: Deployment) -> Reply:
        return encode_response(response, decoded.options)

    def refusal(self, exc: Exception) -> Reply:
        return to_reply(exc, v2=True)

    def cache_view(self, body: bytes, headers: dict[bytes, bytes]) -> bytes | None:
        return body


def decode_request(
    ref: ModelRef,
    body: bytes,
    content_type: bytes | None,
    header_length: bytes | None,
    max_json_depth: int = 64,
    nullable: frozenset[str] = frozenset(),
) -> Decoded:
    """An inference request from a V2 body (JSON, or JSON plus binary tensors); JSON null
    is a missing value in the ``nullable`` inputs (the signature's)."""
    if header_length is None:
        check_json(content_type)
        document, binary = load_json(body, max_json_depth), memoryview(b"")
    else:
        size = _header_size(header_length, len(body))
        document = load_json(memoryview(body)[:size], max_json_depth)
        binary = memoryview(body)[size:]
    if not isinstance(document, dict):
        raise InvalidInput("the request body must be a JSON object with 'inputs'")
    inputs = _decode_inputs(document.get("inputs"), binary, nullable)
    outputs, binary_outputs = _requested_outputs(document)
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("'id' must be a string")
    # Each decoded array has the dtype its tensor declared: the signature must agree.
    declared = {name: from_numpy_dtype(array.dtype) for name, array in inputs.items()}
    request = InferRequest(ref, inputs, outputs, id=request_id, datatypes=declared)
    return Decoded(request, binary_outputs)


def encode_response(response: InferResponse, binary_outputs: set[str]) -> Reply:
    """The V2 answer; outputs in ``binary_outputs`` (all, with ``"*"``) as binary data."""
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    every = ALL_OUTPUTS in binary_outputs
    for name, array in response.outputs.items():
        if every or name in binary_outputs:
            datatype, shape, raw = codec.to_bytes(array)
            entries.append(
                {
                    "name": name,
                    "datatype": datatype,
                    "shape": shape,
                    "parameters": {"binary_data_size": len(raw)},
                }
            )
            chunks.append(raw)
        else:
            datatype, shape, data = codec.to_json(array)
            entries.append({"name": name, "datatype": datatype, "shape": shape, "data": data})
    document: dict[str, Any] = {
        "model_name": response.model,
        "model_version": str(response.version),
    }
    if response.id is not None:
        document["id"] = response.id
    document["outputs"] = entries
    header = orjson.dumps(document, option=NUMPY_JSON)
    if not chunks:
        return Reply(200, header, JSON)
    return Reply(
        200,
        header + b"".join(chunks),
        OCTET_STREAM,
        [(HEADER_LENGTH, str(len(header)).encode())],
    )


def model_metadata(deployment: Deployment, versions: list[int]) -> dict[str, Any]:
    signature = deployment.signature
    return {
        "name": deployment.name,
        "versions": [str(number) for number in versions],
        "platform": deployment.platform,
        "inputs": [_tensor_metadata(spec) for spec in signature.inputs],
        "outputs": [_tensor_metadata(spec) for spec in signature.outputs],
    }


def _tensor_metadata(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}


def _header_size(value: bytes, body_size: int) -> int:
    if not value.isdigit():
        raise InvalidInput("Inference-Header-Content-Length must be a non-negative integer")
    size = int(value)
    if size > body_size:
        raise InvalidInput(
            f"Inference-Header-Content-Length is {size}, but the body is only {body_size} bytes"
        )
    return size


def _decode_inputs(tensors: Any, binary: memoryview, nullable: frozenset[str]) -> dict[str, Any]:
    if not isinstance(tensors, list) or not tensors:
        raise InvalidInput("'inputs' must be a non-empty list of tensors")
    inputs: dict[str, Any] = {}
    offset = 0
    for index, tensor in enumerate(tensors):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InvalidInput(f"inputs[{index}] must be an object with a 'name'")
        name = tensor["name"]
        if name in inputs:
            raise InvalidInput(f"input '{name}' is given twice", input_name=name)
        datatype = codec.check_datatype(name, tensor.get("datatype"))
        shape = codec.check_shape(name, tensor.get("shape"))
        size = _binary_size(name, tensor.get("parameters"))
        if size is not None:
            if "data" in tensor:
                raise InvalidInput(
                    f"input '{name}' has both 'data' and binary_data_size", input_name=name
                )
            if offset + size > len(binary):
                raise InvalidInput(
                    f"input '{name}': binary_data_size is {size}, but only "
                    f"{len(binary) - offset} binary bytes are left in the body",
                    input_name=name,
                )
            inputs[name] = codec.from_bytes(name, datatype, shape, binary[offset : offset + size])
            offset += size
        elif "data" in tensor:
            data = tensor["data"]
            inputs[name] = codec.from_json(name, datatype, shape, data, name in nullable)
        else:
            raise InvalidInput(
                f"input '{name}' has no 'data' (and no binary_data_size)", input_name=name
            )
    if offset != len(binary):
        raise InvalidInput(
            f"the body has {len(binary)} bytes after the JSON header, but the inputs' "
            f"binary_data_size add up to {offset}"
        )
    return inputs


def _binary_size(name: str, parameters: Any) -> int | None:
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise InvalidInput(f"input '{name}': 'parameters' must be an object", input_name=name)
    size = parameters.get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(
            f"input '{name}': binary_data_size must be a non-negative integer", input_name=name
        )
    return size


def _requested_outputs(document: dict[str, Any]) -> tuple[tuple[str, ...] | None, set[str]]:
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput("'parameters' must be an object")
    all_binary = parameters.get("binary_data_output") is True
    requested = document.get("outputs")
    if requested is None:
        return None, {ALL_OUTPUTS} if all_binary else set()
    if not isinstance(requested, list):
        raise InvalidInput("'outputs' must be a list of {'name': ...} objects")
    names: list[str] = []
    binary: set[str] = set()
    for index, output in enumerate(requested):
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise InvalidInput(f"outputs[{index}] must be an object with a 'name'")
        name = output["name"]
        names.append(name)
        options = output.get("parameters") or {}
        wants_binary = options.get("binary_data") if isinstance(options, dict) else None
        if wants_binary is True or (wants_binary is None and all_binary):
            binary.add(name)
    return tuple(names), binary
