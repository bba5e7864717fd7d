"""The requests a load test sends: valid bodies made from the model's signature and its
reference profile, a few deliberately invalid ones, each encoded once for the wire.

Rows come from the profile's sample of training rows when the registry is at hand
(realistic values, in their real combinations); else each value is drawn from what the
signature says (a feature's declared range, small numbers, short text, ISO dates).
Invalid bodies are mixed in at a fixed share, evenly spread: request ``k`` is invalid
when ``floor((k + 1) * share)`` passes ``floor(k * share)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from servewell.client import infer_request, predict_request
from servewell.core import codec
from servewell.core.datatypes import V2_TO_NUMPY
from servewell.core.rows import inputs_from_instances
from servewell.core.signature import Signature, TensorSpec
from servewell.loadtest.client import Target, encode_request

PROTOCOLS = ("rest", "v2", "v2-binary")
#: How many distinct valid bodies are prepared (requests cycle through them).
DISTINCT_BODIES = 64
JSON = "application/json"


@dataclass(frozen=True)
class RequestSet:
    """The prepared requests: what to send, and the same as plain parts (Locust)."""

    path: str
    headers: dict[str, str]
    valid: list[bytes]
    invalid: list[tuple[bytes, dict[str, str]]]
    """Invalid bodies with their own headers (a binary body's header length)."""
    invalid_share: float
    encoded_valid: list[bytes]
    encoded_invalid: list[bytes]

    def pick(self, k: int) -> tuple[bytes, bool]:
        """Request ``k``'s bytes and whether it is an invalid one."""
        share = self.invalid_share
        if share > 0 and math.floor((k + 1) * share) > math.floor(k * share):
            return self.encoded_invalid[k % len(self.encoded_invalid)], True
        return self.encoded_valid[k % len(self.encoded_valid)], False


def build_requests(
    target: Target,
    model: str,
    version: int | None,
    bodies: tuple[str, list[bytes], dict[str, str]],
    api_key: str | None,
    invalid_share: float,
) -> RequestSet:
    """``bodies`` (path, valid bodies, their headers) and the protocol's invalid bodies
    for ``path``, encoded for ``target``."""
    path, valid, headers = bodies
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    headers = {**headers, **auth}
    invalid = [(body, {"Content-Type": JSON, **auth}) for body in _invalid_json()]
    if "/v2/" in path and "Inference-Header-Content-Length" in headers:
        invalid.append((b"{}", {**headers, "Inference-Header-Content-Length": "99"}))
    return RequestSet(
        path=path,
        headers=headers,
        valid=valid,
        invalid=invalid,
        invalid_share=invalid_share,
        encoded_valid=[encode_request(target, "POST", path, b, headers) for b in valid],
        encoded_invalid=[encode_request(target, "POST", path, b, h) for b, h in invalid],
    )


def generated_bodies(
    model: str,
    version: int | None,
    signature: Signature,
    profile: Mapping[str, Any] | None,
    protocol: str,
    rows_per_request: int,
    seed: int = 0,
) -> tuple[str, list[bytes], dict[str, str]]:
    """The path and :data:`DISTINCT_BODIES` valid bodies for ``protocol``, and their headers."""
    rng = np.random.default_rng(seed)
    bodies, headers = [], {"Content-Type": JSON}
    path = ""
    for _ in range(DISTINCT_BODIES):
        rows = sample_rows(signature, profile, rows_per_request, rng)
        if protocol == "rest":
            path, body = predict_request(model, rows, version)
        else:
            arrays = _arrays(signature, inputs_from_instances(signature, rows), len(rows))
            if protocol == "v2":
                path, body = _v2_json(model, version, arrays)
            else:
                path, body, headers = infer_request(model, arrays, None, version)
        bodies.append(body)
    return path, bodies, headers


def given_body(
    model: str, version: int | None, protocol: str, body: bytes
) -> tuple[str, list[bytes], dict[str, str]]:
    """A body from a file, sent as it is (JSON) on the protocol's path."""
    path = (
        predict_request(model, [], version)[0] if protocol == "rest" else _v2_path(model, version)
    )
    return path, [body], {"Content-Type": JSON}


def sample_rows(
    signature: Signature, profile: Mapping[str, Any] | None, count: int, rng: np.random.Generator
) -> list[Any]:
    """``count`` rows as REST ``instances``: lists in feature order for a model of one
    matrix input, objects keyed by input name for a columnar one."""
    sample = _profile_sample(signature, profile)
    if sample is not None:
        picked = rng.integers(0, len(sample), size=count)
        return [sample[i] for i in picked]
    return [_drawn_row(signature, rng) for _ in range(count)]


def _profile_sample(signature: Signature, profile: Mapping[str, Any] | None) -> list[Any] | None:
    """The profile's sample rows in the signature's shape, or None when it has none that
    fits (a profile without a sample, columns the signature does not name)."""
    sample = (profile or {}).get("sample") or {}
    features: Mapping[str, list[Any]] = sample.get("features") or {}
    if not features or not sample.get("rows"):
        return None
    single = len(signature.inputs) == 1 and len(signature.inputs[0].shape) == 2
    names = list(signature.feature_names or ()) if single else [s.name for s in signature.inputs]
    if not names or any(name not in features for name in names):
        return None
    nullable = {spec.name for spec in signature.inputs if spec.nullable}
    may_miss = bool(nullable) if single else False
    rows: list[Any] = []
    for i in range(int(sample["rows"])):
        values = [features[name][i] for name in names]
        missing = {name for name, value in zip(names, values, strict=True) if value is None}
        if missing and not (may_miss or missing <= nullable):
            continue  # a row the model imputed in training but cannot take here
        rows.append(values if single else dict(zip(names, values, strict=True)))
    return rows or None


def _drawn_row(signature: Signature, rng: np.random.Generator) -> Any:
    if len(signature.inputs) == 1:
        spec = signature.inputs[0]
        width = math.prod(max(dim, 1) for dim in spec.row_shape)
        names = list(signature.feature_names or ())
        values = [
            _drawn_value(spec, signature, names[i] if i < len(names) else None, rng)
            for i in range(width)
        ]
        return values if spec.row_shape else values[0]
    return {spec.name: _drawn_value(spec, signature, spec.name, rng) for spec in signature.inputs}


def _drawn_value(
    spec: TensorSpec, signature: Signature, feature: str | None, rng: np.random.Generator
) -> Any:
    ranges = signature.feature_ranges or {}
    if spec.datatype == "BYTES":
        if spec.datetime:
            return f"2026-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}T12:00:00Z"
        return f"v{rng.integers(0, 5)}"
    if spec.datatype == "BOOL":
        return bool(rng.integers(0, 2))
    bound = ranges.get(feature) if feature else None
    low = bound.min if bound is not None and bound.min is not None else 0.0
    high = bound.max if bound is not None and bound.max is not None else low + 10.0
    if spec.datatype.startswith(("INT", "UINT")):
        return int(rng.integers(math.ceil(low), math.floor(high) + 1))
    return float(rng.uniform(low, high))


def _arrays(signature: Signature, inputs: dict[str, Any], rows: int) -> dict[str, Any]:
    """Named inputs as numpy arrays of the signature's datatypes ([rows, ...])."""
    arrays = {}
    for spec in signature.inputs:
        dtype = object if spec.datatype == "BYTES" else V2_TO_NUMPY[spec.datatype]
        values = [np.nan if v is None else v for v in inputs[spec.name]]
        arrays[spec.name] = np.asarray(values, dtype=dtype).reshape(rows, *spec.row_shape)
    return arrays


def _v2_path(model: str, version: int | None) -> str:
    return f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"


def _v2_json(model: str, version: int | None, arrays: dict[str, Any]) -> tuple[str, bytes]:
    tensors = []
    for name, array in arrays.items():
        datatype, shape, data = codec.to_json(array)
        tensors.append({"name": name, "datatype": datatype, "shape": shape, "data": data})
    body = orjson.dumps({"inputs": tensors}, option=orjson.OPT_SERIALIZE_NUMPY)
    return _v2_path(model, version), body


def _invalid_json() -> list[bytes]:
    """Bodies no model takes: not JSON, the wrong shape, an input nobody declared."""
    return [
        b'{"instances": [',
        b'{"instances": "not rows"}',
        b'{"inputs": [{"name": "no_such_input", "datatype": "FP32", "shape": [1], "data": [1]}]}',
        b'{"something": "else"}',
    ]
