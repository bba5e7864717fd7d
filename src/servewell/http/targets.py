"""The inference routes, in one table: it drives the path matcher the server and its
fast lane use, and the routes' OpenAPI description (``http.routes``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class InferTarget:
    """What an inference path names."""

    protocol: str
    """``v2`` or ``rest``."""
    model: str
    version: str | None


@dataclass(frozen=True, slots=True)
class InferRoute:
    """One protocol's inference route: ``{prefix}{model}[/versions/{version}]{suffix}``."""

    protocol: str
    prefix: str
    suffix: str
    tag: str
    summary: str
    request_body: dict[str, Any]
    """The OpenAPI ``requestBody``."""

    def templates(self) -> tuple[str, str]:
        """The route's paths as OpenAPI writes them: the default version, then one."""
        return (
            f"{self.prefix}{{name}}{self.suffix}",
            f"{self.prefix}{{name}}/versions/{{version}}{self.suffix}",
        )


V2_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "object", "required": ["inputs"]},
            "example": {
                "id": "42",
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2],
                            "data": [0.5, 1.5]}],
            },
        },
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}  # fmt: skip
REST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "object"},
            "examples": {
                "rows": {"value": {"instances": [[0.5, 1.5], [2.0, 0.1]]}},
                "objects": {"value": {"instances": [{"a": 0.5, "b": 1.5}]}},
                "columns": {"value": {"inputs": {"a": [0.5, 2.0], "b": [1.5, 0.1]}}},
            },
        }
    },
}

INFER_ROUTES = (
    InferRoute(
        "v2",
        "/v2/models/",
        "/infer",
        "v2",
        "Inference, Open Inference Protocol (JSON or Triton's binary tensor data)",
        V2_BODY,
    ),
    InferRoute(
        "rest",
        "/v1/models/",
        ":predict",
        "rest",
        "Predictions for rows (instances) or columns (inputs)",
        REST_BODY,
    ),
)


@functools.lru_cache(maxsize=1024)  # a server sees few distinct paths; targets are immutable
def match_infer(path: str) -> InferTarget | None:
    """The target of an inference route's path (:data:`INFER_ROUTES`); None for any
    other path."""
    for route in INFER_ROUTES:
        if path.startswith(route.prefix) and path.endswith(route.suffix):
            middle = path[len(route.prefix) : -len(route.suffix)]
            break
    else:
        return None
    name, sep, version = middle.partition("/versions/")
    if not name or "/" in name or (sep and (not version or "/" in version)):
        return None
    return InferTarget(route.protocol, name, version if sep else None)
