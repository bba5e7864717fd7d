"""A v2 upstream's model metadata as a servewell signature, or one clear error."""

from __future__ import annotations

import pytest

from servewell.core.chat_signature import chat_signature, is_chat_signature, openai_signature
from servewell.core.remote_spec import parse_remote_spec
from servewell.errors import UpstreamFailed
from servewell.registration.remote import remote_signature, signature_from_metadata

SPEC = parse_remote_spec("kind: v2\nurl: http://triton:8000\nmodel: iris\nversion: '3'")


def test_metadata_becomes_the_signature() -> None:
    metadata = {
        "name": "iris",
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1], "parameters": {}}],
    }
    signature = signature_from_metadata(SPEC, metadata)
    assert signature.inputs[0].shape == (-1, 4)
    assert signature.outputs[0].datatype == "INT64"
    assert SPEC.v2_model_path == "/v2/models/iris/versions/3"


@pytest.mark.parametrize(
    "metadata",
    [
        [],
        {"outputs": []},
        {"inputs": [{"name": "x", "datatype": "FP128", "shape": [-1]}]},
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [0]}]},
    ],
)
def test_unusable_metadata_is_upstream_failed(metadata: object) -> None:
    with pytest.raises(UpstreamFailed) as caught:
        signature_from_metadata(SPEC, metadata)
    assert caught.value.exit_code == 11
    assert "nothing was registered" in caught.value.message


def test_an_openai_upstream_serves_the_chat_signature() -> None:
    spec = parse_remote_spec("kind: openai\nurl: http://vllm:8000\nmodel: llama")
    assert remote_signature(spec) == openai_signature()
    assert is_chat_signature(openai_signature())
    assert is_chat_signature(chat_signature())
