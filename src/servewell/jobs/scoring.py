"""Scoring one chunk: the server's validation and model steps, row by row when a row is
bad, so a bad row gets the message the server would give it and the others go on.

A chunk is sent to the model in batches of ``batch_rows`` (the model's batch size),
one batch at a time. A batch the model steps refuse (``InvalidInput``) is looked at row
by row: each row is validated alone, exactly as a request of that one row would be, and
the rows that pass are scored together again. Anything else that fails (the model
crashed, the server is stopping) is not a bad row: it propagates, and the chunk is tried
again or the job fails.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from servewell.core.inference import InferRequest
from servewell.core.ref import ModelRef
from servewell.core.rows import inputs_from_instances, to_predictions
from servewell.core.signature import Signature
from servewell.core.validation import InputLimits, validate_inputs
from servewell.errors import InvalidInput
from servewell.jobs.results import Row, id_name
from servewell.jobs.tables import BadRow, Chunk

if TYPE_CHECKING:
    from servewell.registry import ModelVersion, RegistryAccess
    from servewell.serving.deployment import Deployment
    from servewell.serving.predictor import Predictor

Outputs = dict[str, np.ndarray[Any, Any]]
Predict = Callable[[dict[str, Any]], Outputs]
"""Validated-and-predicted outputs for named inputs (raises InvalidInput for bad ones)."""


@dataclass(frozen=True, slots=True)
class Scorer:
    """What a chunk is scored with: the pinned version's signature, the request limits,
    the model steps, and the batch size."""

    signature: Signature
    limits: InputLimits
    predict: Predict
    batch_rows: int


def score_chunk(
    scorer: Scorer,
    chunk: Chunk,
    id_column: str | None,
    between_batches: Callable[[], None] = lambda: None,
) -> list[Row]:
    """One output row per input row, in order. ``between_batches`` runs before each
    batch (where a cancel is noticed, and a lease renewed)."""
    answers: list[Row | None] = [None] * len(chunk.rows)
    readable = []
    for index, row in enumerate(chunk.rows):
        if isinstance(row, BadRow):
            answers[index] = _failed(row.message)
        else:
            readable.append(index)
    for start in range(0, len(readable), scorer.batch_rows):
        between_batches()
        part = readable[start : start + scorer.batch_rows]
        scored = _score_rows(scorer, [chunk.rows[index] for index in part])
        for index, answer in zip(part, scored, strict=True):
            answers[index] = answer
    name = id_name(id_column)
    return [
        {name: row_id, **answer}
        for row_id, answer in zip(chunk.ids, answers, strict=True)
        if answer is not None
    ]


def _score_rows(scorer: Scorer, rows: list[Any]) -> list[Row]:
    signature = scorer.signature
    try:
        return _answers(signature, scorer.predict(inputs_from_instances(signature, rows)))
    except InvalidInput as exc:
        if len(rows) == 1:
            return [_failed(exc.message)]
    messages = [_why_invalid(scorer, row) for row in rows]
    valid = [row for row, message in zip(rows, messages, strict=True) if message is None]
    if len(valid) == len(rows):  # each row passes alone: the model refused the batch
        return [answer for row in rows for answer in _score_rows(scorer, [row])]
    scored = iter(_score_rows(scorer, valid) if valid else [])
    return [_failed(message) if message is not None else next(scored) for message in messages]


def _why_invalid(scorer: Scorer, row: Any) -> str | None:
    """The server's message for a request of this one row, or None when it is valid."""
    try:
        validate_inputs(
            scorer.signature, inputs_from_instances(scorer.signature, [row]), scorer.limits
        )
    except InvalidInput as exc:
        return exc.message
    return None


def _answers(signature: Signature, outputs: Outputs) -> list[Row]:
    answer = to_predictions(signature, outputs)
    predictions = _listed(answer["predictions"])
    probabilities = answer.get("probabilities")
    classes = [str(label) for label in answer.get("classes", ())]
    if probabilities is None:
        return [_row(prediction, None) for prediction in predictions]
    return [
        _row(prediction, dict(zip(classes, row, strict=True)))
        for prediction, row in zip(predictions, _listed(probabilities), strict=True)
    ]


def _listed(values: Any) -> list[Any]:
    if isinstance(values, np.ndarray):
        return values.tolist()  # type: ignore[no-any-return]
    return [_plain(value) for value in values]


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _row(prediction: Any, probabilities: dict[str, float] | None) -> Row:
    return {"prediction": prediction, "probabilities": probabilities, "error": None}


def _failed(message: str) -> Row:
    return {"prediction": None, "probabilities": None, "error": message}


# --- where the model steps run ---------------------------------------------------------------


def batch_rows_for(access: RegistryAccess, signature: Signature, model: str) -> int:
    """The rows sent to the model at once: its batch size, within the request limits."""
    rows = min(
        access.settings.model(model).batching.max_batch_size, access.settings.validation.max_rows
    )
    return min(rows, signature.max_batch_size) if signature.max_batch_size else rows


def loop_scorer(
    access: RegistryAccess,
    loop: asyncio.AbstractEventLoop,
    predictor: Predictor,
    deployment: Deployment,
) -> Scorer:
    """Scoring from a worker thread through ``predictor`` on ``loop``: the model's own
    batch queue, breaker and output filters, as a request of the server has them."""
    ref = ModelRef(deployment.name, version=deployment.number)

    def predict(inputs: dict[str, Any]) -> Outputs:
        call = predictor.infer(InferRequest(ref, inputs), deployment)
        return asyncio.run_coroutine_threadsafe(call, loop).result().outputs

    signature = deployment.signature
    return Scorer(
        signature,
        predictor.limits,
        predict,
        batch_rows_for(access, signature, deployment.name),
    )


@contextmanager
def standalone_scorer(access: RegistryAccess, version: ModelVersion) -> Iterator[Scorer]:
    """A scorer over ``version`` loaded in this process, on an event loop of its own
    thread (``servewell batch``, a Celery worker)."""
    from servewell.serving.local import load_predictor

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="servewell-batch", daemon=True)
    thread.start()
    try:
        predictor = asyncio.run_coroutine_threadsafe(load_predictor(access, version), loop).result()
        try:
            deployment = predictor.pool.get(version.name, version.version)
            yield loop_scorer(access, loop, predictor, deployment)
        finally:
            asyncio.run_coroutine_threadsafe(predictor.pool.close(), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
