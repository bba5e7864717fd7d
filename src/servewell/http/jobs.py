"""The batch job routes (``jobs/service.py`` does the work):

* ``POST /v1/models/{name}/jobs``: a ``multipart/form-data`` upload, the rows in the
  part ``file`` (CSV, JSON Lines or Parquet: from the file name, or the ``format``
  field or query parameter) and optionally ``id_column``; or, for an admin key, JSON
  naming a file already in the artifact store (``{"path": ..., "id_column": ...}``);
  202 with the job, pinned to the version the name resolves to now. Needs ``predict``
  on the model (the guard).
* ``GET /v1/jobs``: the caller's jobs (an admin key's: every job).
* ``GET /v1/jobs/{id}``: state, ``rows_done``, ``rows_total``, ``rows_per_s``,
  ``eta_s``, ``error``.
* ``GET /v1/jobs/{id}/results``: the rows, streamed, in the input's format or
  ``?format=``; 409 until the job has succeeded.
* ``DELETE /v1/jobs/{id}``: cancel (the runner stops within a batch).

Another key's job answers 404, as one that does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from servewell.core.apikey import grants
from servewell.core.ref import ModelRef, check_name
from servewell.errors import Forbidden, InvalidInput
from servewell.http.running import RunningServer
from servewell.http.upload import check_upload_length, receive_upload
from servewell.http.wire import load_json, read_body
from servewell.jobs.results import Row, csv_header, encode_text, write_table
from servewell.jobs.service import Viewer, job_status
from servewell.jobs.tables import format_of
from servewell.serving.admission import key_from

MEDIA_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}

_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "id_column": {"type": "string"},
                    "format": {"type": "string", "enum": list(MEDIA_TYPES)},
                },
            }
        },
        "application/json": {  # admin keys: a file already in the artifact store
            "schema": {
                "type": "object",
                "required": ["path"],
                "properties": {
                    "path": {"type": "string"},
                    "id_column": {"type": "string"},
                    "format": {"type": "string", "enum": list(MEDIA_TYPES)},
                },
            }
        },
    },
}


def add_job_routes(api: FastAPI, running: Callable[[], RunningServer]) -> None:
    @api.post(
        "/v1/models/{name}/jobs",
        tags=["jobs"],
        status_code=202,
        openapi_extra={"requestBody": _UPLOAD_BODY},
    )
    async def submit_job(name: str, request: Request) -> JSONResponse:
        """Score a file of rows with the version ``name`` resolves to now: uploaded
        (multipart), or, for an admin key, ``{"path": ...}`` inside the artifact store."""
        server = running()
        check_name(name)
        deployment = server.predictor.resolve(ModelRef(name))  # 404 for a model not served
        viewer = _viewer(request, server)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media == "application/json":
            target, filename, fields = await _stored_file(request, server, viewer)
        else:
            target, filename, fields = await _uploaded_file(request, server)
        given = request.query_params.get("format") or fields.get("format") or None
        try:
            table_format = format_of(Path(filename or "upload"), given)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        id_column = fields.get("id_column") or None
        job = await asyncio.to_thread(
            server.jobs.submit, deployment, viewer, target, table_format, id_column
        )
        return JSONResponse(
            job_status(job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"}
        )

    _add_reading_routes(api, running)


def _add_reading_routes(api: FastAPI, running: Callable[[], RunningServer]) -> None:
    @api.get("/v1/jobs", tags=["jobs"])
    async def list_jobs(request: Request) -> dict[str, Any]:
        """The caller's jobs, newest first (an admin key: every job)."""
        server = running()
        jobs = await asyncio.to_thread(server.jobs.listed, _viewer(request, server))
        return {"jobs": [job_status(job) for job in jobs]}

    @api.get("/v1/jobs/{job_id}", tags=["jobs"])
    async def job(job_id: str, request: Request) -> dict[str, Any]:
        """A job's state and progress."""
        server = running()
        found = await asyncio.to_thread(server.jobs.get, job_id, _viewer(request, server))
        return job_status(found)

    @api.delete("/v1/jobs/{job_id}", tags=["jobs"])
    async def cancel_job(job_id: str, request: Request) -> dict[str, Any]:
        """Cancel a queued or running job; a finished one stays as it ended."""
        server = running()
        found = await asyncio.to_thread(server.jobs.cancel, job_id, _viewer(request, server))
        return job_status(found)

    @api.get("/v1/jobs/{job_id}/results", tags=["jobs"])
    async def job_results(job_id: str, request: Request) -> StreamingResponse:
        """A succeeded job's rows (id, prediction, probabilities, error), streamed."""
        server = running()
        viewer = _viewer(request, server)
        return await results_response(server, job_id, viewer, request.query_params.get("format"))


async def results_response(
    server: RunningServer, job_id: str, viewer: Viewer, given: str | None
) -> StreamingResponse:
    """A succeeded job's rows as a download, in the input's format or ``given``'s (the
    job API's and the dashboard's)."""
    found, chunks = await asyncio.to_thread(server.jobs.results, job_id, viewer)
    table_format = format_of(Path("results"), given or found.input_format)
    if table_format == "parquet":
        version = await asyncio.to_thread(
            server.services.registry.get_version, found.model, found.version
        )
        path = server.jobs.upload_path()
        await asyncio.to_thread(write_table, path, "parquet", chunks, version.signature)
        body: Iterator[bytes] = _file_pieces(path)
    else:
        body = _text_pieces(chunks, table_format, found.id_column)
    disposition = f'attachment; filename="{job_id}.{table_format}"'
    return StreamingResponse(
        body, media_type=MEDIA_TYPES[table_format], headers={"Content-Disposition": disposition}
    )


Staged = tuple[Path, str | None, dict[str, str]]
"""The job's input where ``JobService.submit`` takes it, its file name, the text fields."""


async def _uploaded_file(request: Request, server: RunningServer) -> Staged:
    limit = server.settings.jobs.max_upload_bytes
    check_upload_length(request.headers.get("content-length"), limit)
    target = server.jobs.upload_path()
    upload = await receive_upload(
        request.headers.get("content-type", ""), request.stream(), target, limit
    )
    return target, upload.filename, upload.fields


async def _stored_file(request: Request, server: RunningServer, viewer: Viewer) -> Staged:
    """``{"path": "incoming/rows.csv", "id_column": ..., "format": ...}``: a file already
    in the artifact store (an admin's: it names any file there)."""
    if not viewer.sees_all:
        raise Forbidden("submitting a path in the artifact store needs the 'admin' scope")
    settings = server.settings
    body = await read_body(request.scope, request.receive, settings.server.max_body_bytes)
    document = load_json(body, settings.validation.max_json_depth)
    if not isinstance(document, dict) or not isinstance(document.get("path"), str):
        raise InvalidInput('a JSON submission is {"path": "<file in the artifact store>"}')
    fields = {key: str(value) for key, value in document.items() if key != "path"}
    target = await asyncio.to_thread(server.jobs.stage_stored, document["path"])
    return target, document["path"], fields


def _viewer(request: Request, server: RunningServer) -> Viewer:
    """Who asks (the guard has admitted the key already): its name, and whether it is
    an admin's (sees every job). Without keys, everyone sees every job."""
    keyring = server.protection.keyring
    if keyring is None:
        return Viewer(None, True)
    headers = request.headers
    token = key_from(_latin1(headers.get("authorization")), _latin1(headers.get("x-api-key")))
    key = keyring.authenticate(token)
    return Viewer(key.name, grants(key.scopes, "admin"))


def _latin1(value: str | None) -> bytes | None:
    return value.encode("latin-1") if value is not None else None


def _text_pieces(
    chunks: Iterator[list[Row]], table_format: str, id_column: str | None
) -> Iterator[bytes]:
    """CSV or JSON Lines, one chunk at a time (the header even when there are no rows)."""
    if table_format == "csv":
        yield csv_header(id_column)
    for rows in chunks:
        yield encode_text(rows, table_format, header=False)


def _file_pieces(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    try:
        with path.open("rb") as file:
            while piece := file.read(size):
                yield piece
    finally:
        path.unlink(missing_ok=True)
