"""A Python client for a servewell server, sync (:class:`Client`) and async
(:class:`AsyncClient`), on httpx.

Failures come back as servewell's own typed errors, the same classes the server maps to
status codes: an ``InvalidInput`` on the server is an ``InvalidInput`` here, with the
server's message. Connection problems stay httpx's (``httpx.ConnectError``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import numpy as np
import orjson

from servewell import errors
from servewell.core import codec

Array = np.ndarray[Any, Any]

HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass(frozen=True, slots=True)
class Prediction:
    """The REST answer for a batch of rows."""

    model: str
    version: int
    predictions: list[Any]
    probabilities: list[list[float]] | None = None
    classes: list[Any] | None = None


@dataclass(frozen=True, slots=True)
class Health:
    ready: bool
    summary: str
    """The server's one-line ``/health`` text."""


# --- requests and answers, shared by both clients (no I/O) ---------------------------------


def predict_request(model: str, rows: Any, version: int | None) -> tuple[str, bytes]:
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + ":predict"
    body = {"inputs": rows} if isinstance(rows, Mapping) else {"instances": rows}
    return path, orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def _to_prediction(response: httpx.Response) -> Prediction:
    body = _checked(response).json()
    return Prediction(
        model=body["model"],
        version=body["version"],
        predictions=body["predictions"],
        probabilities=body.get("probabilities"),
        classes=body.get("classes"),
    )


def infer_request(
    model: str,
    inputs: Mapping[str, Array],
    outputs: Sequence[str] | None,
    version: int | None,
) -> tuple[str, bytes, dict[str, str]]:
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    tensors, chunks = [], []
    for name, array in inputs.items():
        datatype, shape, raw = codec.to_bytes(np.asarray(array))
        tensors.append(
            {
                "name": name,
                "datatype": datatype,
                "shape": shape,
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        chunks.append(raw)
    document: dict[str, Any] = {"inputs": tensors, "parameters": {"binary_data_output": True}}
    if outputs is not None:
        document["outputs"] = [{"name": name} for name in outputs]
    header = orjson.dumps(document)
    headers = {HEADER_LENGTH: str(len(header)), "Content-Type": "application/octet-stream"}
    return path, header + b"".join(chunks), headers


def _to_arrays(response: httpx.Response) -> dict[str, Array]:
    _checked(response)
    content = response.content
    length = int(response.headers.get(HEADER_LENGTH, len(content)))
    document = orjson.loads(content[:length])
    arrays: dict[str, Array] = {}
    offset = length
    for output in document["outputs"]:
        name, datatype, shape = output["name"], output["datatype"], tuple(output["shape"])
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            arrays[name] = codec.from_json(name, datatype, shape, output["data"])
        else:
            arrays[name] = codec.from_bytes(name, datatype, shape, content[offset : offset + size])
            offset += size
    return arrays


def _to_health(response: httpx.Response) -> Health:
    return Health(ready=response.status_code == 200, summary=response.text.strip())


def _to_models(response: httpx.Response) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = _checked(response).json()["models"]
    return models


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    raise to_error(response)


def to_error(response: httpx.Response) -> errors.ServewellError:
    """The servewell error a failed response stands for."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("error") or f"HTTP {response.status_code}")
    cls = _error_class(body.get("code"), response)
    error = cls.__new__(cls)
    errors.ServewellError.__init__(error, message, **(body.get("detail") or {}))
    if isinstance(error, errors.Overloaded | errors.ShuttingDown):
        error.retry_after_s = int(response.headers.get("retry-after", "1") or 1)
    return error


def _error_class(code: Any, response: httpx.Response) -> type[errors.ServewellError]:
    by_code = {cls.code: cls for cls in _subclasses(errors.ServewellError)}
    if isinstance(code, str) and code in by_code:
        return by_code[code]
    # V2 routes answer only {"error": ...}: the status says which.
    status = response.status_code
    if status == 503:
        return errors.Overloaded if "retry-after" in response.headers else errors.NotReady
    by_status: dict[int, type[errors.ServewellError]] = {
        400: errors.InvalidInput,
        401: errors.Unauthorized,
        403: errors.Forbidden,
        404: errors.NotFound,
        409: errors.Conflict,
        413: errors.PayloadTooLarge,
        415: errors.UnsupportedMediaType,
    }
    return by_status.get(status, errors.ServewellError)


def _subclasses(cls: type[errors.ServewellError]) -> list[type[errors.ServewellError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


# --- the clients -----------------------------------------------------------------------------


class Client:
    """Talks to a servewell server: ``Client("http://127.0.0.1:8000").predict("m", rows)``."""

    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self._http: httpx.Client | None = None

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                base_url=self.url, headers=_headers(self.api_key), timeout=self.timeout_s
            )
        return self._http

    def predict(self, model: str, rows: Any, version: int | None = None) -> Prediction:
        """Predictions for rows (lists, or objects keyed by feature name), or for columns
        (a mapping of column name to values)."""
        path, body = predict_request(model, rows, version)
        response = self.http.post(path, content=body, headers={"Content-Type": "application/json"})
        return _to_prediction(response)

    def infer(
        self,
        model: str,
        inputs: Mapping[str, Array],
        outputs: Sequence[str] | None = None,
        version: int | None = None,
    ) -> dict[str, Array]:
        """Open Inference Protocol inference with binary tensors: arrays in, arrays out."""
        path, body, headers = infer_request(model, inputs, outputs, version)
        return _to_arrays(self.http.post(path, content=body, headers=headers))

    def health(self) -> Health:
        return _to_health(self.http.get("/health"))

    def models(self) -> list[dict[str, Any]]:
        """The models served: name, default version, versions, platform, readiness."""
        return _to_models(self.http.get("/v1/models"))

    # --- batch jobs ----------------------------------------------------------------------

    def submit_job(
        self,
        model: str,
        path: Path,
        id_column: str | None = None,
        table_format: str | None = None,
    ) -> dict[str, Any]:
        """Upload a file of rows as a batch job (streamed from disk); the job's status."""
        fields = {"id_column": id_column} if id_column else {}
        query = {"format": table_format} if table_format else None
        with path.open("rb") as file:
            response = self.http.post(
                f"/v1/models/{model}/jobs",
                files={"file": (path.name, file)},
                data=fields,
                params=query,
            )
        return _checked(response).json()  # type: ignore[no-any-return]

    def job(self, job_id: str) -> dict[str, Any]:
        return _checked(self.http.get(f"/v1/jobs/{job_id}")).json()  # type: ignore[no-any-return]

    def jobs(self) -> list[dict[str, Any]]:
        return _checked(self.http.get("/v1/jobs")).json()["jobs"]  # type: ignore[no-any-return]

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return _checked(self.http.delete(f"/v1/jobs/{job_id}")).json()  # type: ignore[no-any-return]

    def job_results(self, job_id: str, target: Path, table_format: str | None = None) -> None:
        """Stream a succeeded job's rows into ``target``."""
        query = {"format": table_format} if table_format else None
        with self.http.stream("GET", f"/v1/jobs/{job_id}/results", params=query) as response:
            if not response.is_success:
                response.read()
                raise to_error(response)
            with target.open("wb") as out:
                for piece in response.iter_bytes():
                    out.write(piece)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient:
    """The same as :class:`Client`, for asyncio code."""

    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.url, headers=_headers(self.api_key), timeout=self.timeout_s
            )
        return self._http

    async def predict(self, model: str, rows: Any, version: int | None = None) -> Prediction:
        path, body = predict_request(model, rows, version)
        response = await self.http.post(
            path, content=body, headers={"Content-Type": "application/json"}
        )
        return _to_prediction(response)

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, Array],
        outputs: Sequence[str] | None = None,
        version: int | None = None,
    ) -> dict[str, Array]:
        path, body, headers = infer_request(model, inputs, outputs, version)
        return _to_arrays(await self.http.post(path, content=body, headers=headers))

    async def health(self) -> Health:
        return _to_health(await self.http.get("/health"))

    async def models(self) -> list[dict[str, Any]]:
        return _to_models(await self.http.get("/v1/models"))

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
