"""TF-Serving-style REST adapter: ``{"instances": [...]}`` or ``{"inputs": ...}`` in,
``{"predictions": [...]}`` (plus probabilities and classes for a classifier) out."""

from __future__ import annotations

from typing import Any

from servewell.core.inference import InferRequest, InferResponse
from servewell.core.ref import ModelRef
from servewell.core.rows import inputs_from_columns, inputs_from_instances, to_predictions
from servewell.core.signature import Signature
from servewell.errors import InvalidInput
from servewell.http.problems import to_reply
from servewell.http.wire import check_json, load_json
from servewell.serving.breaker import CLOSED
from servewell.serving.call import Decoded
from servewell.serving.deployment import Deployment
from servewell.serving.reply import Reply


class RestCodec:
    """The gateway's REST codec (``serving.gateway.Codec``)."""

    protocol = "rest"

    def __init__(self, max_json_depth: int = 64) -> None:
        self.max_json_depth = max_json_depth

    def decode(
        self, ref: ModelRef, deployment: Deployment, body: bytes, headers: dict[bytes, bytes]
    ) -> Decoded:
        request = decode_request(
            ref, deployment.signature, body, headers.get(b"content-type"), self.max_json_depth
        )
        return Decoded(request)

    def encode(self, decoded: Decoded, response: InferResponse, deployment: Deployment) -> Reply:
        return encode_response(deployment.signature, response)

    def refusal(self, exc: Exception) -> Reply:
        return to_reply(exc, v2=False)

    def cache_view(self, body: bytes, headers: dict[bytes, bytes]) -> bytes | None:
        return body


def decode_request(
    ref: ModelRef,
    signature: Signature,
    body: bytes,
    content_type: bytes | None,
    max_json_depth: int = 64,
) -> InferRequest:
    check_json(content_type)
    document = load_json(body, max_json_depth)
    if not isinstance(document, dict):
        raise InvalidInput(
            "the request body must be a JSON object with 'instances' (rows) or 'inputs' (columns)"
        )
    has_rows, has_columns = "instances" in document, "inputs" in document
    if has_rows == has_columns:
        raise InvalidInput(
            "the request body needs exactly one of 'instances' (a list of rows) "
            "and 'inputs' (columns)"
        )
    if has_rows:
        inputs = inputs_from_instances(signature, document["instances"])
    else:
        inputs = inputs_from_columns(signature, document["inputs"])
    return InferRequest(model=ref, inputs=inputs)


def encode_response(signature: Signature, response: InferResponse) -> Reply:
    answer: dict[str, Any] = {"model": response.model, "version": response.version}
    answer.update(to_predictions(signature, response.outputs))
    return Reply.json(200, answer)


def model_status(
    deployments: list[Deployment], ready: bool, failed: dict[int, str] | None = None
) -> dict[str, Any]:
    """TF-Serving's ``GET /v1/models/{name}`` answer; ``failed``: the versions that could
    not be loaded (version -> why), shown as TF-Serving shows a failed load: state
    ``END``, the error in its status."""
    loaded = {
        deployment.number: {
            "version": str(deployment.number),
            "state": "AVAILABLE" if ready else "LOADING",
            "status": _breaker_status(deployment),
        }
        for deployment in deployments
    }
    for number, why in (failed or {}).items():
        status = {"error_code": "UNKNOWN", "error_message": why}
        loaded[number] = {"version": str(number), "state": "END", "status": status}
    return {"model_version_status": [loaded[number] for number in sorted(loaded)]}


def _breaker_status(deployment: Deployment) -> dict[str, str]:
    """A version whose circuit breaker is open or half-open is loaded (``AVAILABLE``)
    but refuses calls: TF-Serving's ``UNAVAILABLE`` code, the breaker in the message."""
    breaker = deployment.breaker
    if breaker is None or breaker.state == CLOSED:
        return {"error_code": "OK", "error_message": ""}
    return {"error_code": "UNAVAILABLE", "error_message": breaker.describe()}
