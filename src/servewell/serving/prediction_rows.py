"""A logged prediction as the request path leaves it, and as the database stores it.

The request path appends a :class:`Logged` (references only: nothing is copied or
encoded there); the log's flush thread turns a batch of them into rows with
:meth:`RowBuilder.to_rows`:
outputs as the model gave them, inputs as ``models.<name>.monitoring.log_inputs`` says
(``full``: the values; ``hash``: a keyed BLAKE2b of each value, so equal values stay
equal and nothing readable is kept; ``none``: left out; unset: ``full`` for numbers,
``hash`` for text, i.e. ``BYTES`` inputs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np
import orjson

from servewell.core.feedback import MAX_REQUEST_ID_CHARS
from servewell.core.inference import InferRequest, InferResponse
from servewell.core.rows import to_plain
from servewell.core.signature import Signature
from servewell.registry.predictions import PredictionRow

#: The hash key when ``monitoring.hash_key`` is not set: equal values still hash alike
#: everywhere, but anyone can recompute the hash of a guessed value.
DEFAULT_HASH_KEY = b"servewell-prediction-log"
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class Answer(NamedTuple):
    """What the model was asked and answered (None for a response-cache hit)."""

    signature: Signature
    request: InferRequest
    response: InferResponse


class Logged(NamedTuple):
    """One served prediction, as the request path appends it to the buffer."""

    at: float
    """``time.time()`` when it was answered."""
    request_id: str
    model: str
    version: str
    arm: str | None
    """The traffic arm that answered, as its policy names it (None: not routed)."""
    caller: str
    """A key's name, or ``ip:<address>`` without keys (not stored)."""
    latency_s: float
    answer: Answer | None
    """None for a response-cache hit: the answer is an earlier one's bytes."""


#: The policies of a model whose every input is logged in full.
ALL_FULL: dict[str, str] = {}

InputPolicy = Callable[[str], str | None]
"""``log_inputs`` as set for a model (None: by datatype)."""


class RowBuilder:
    """Turns :class:`Logged` records into rows of ``predictions``; used by the flush
    thread alone (it caches per-signature decisions without a lock)."""

    def __init__(self, log_inputs: InputPolicy, hash_key: bytes = DEFAULT_HASH_KEY) -> None:
        self.log_inputs = log_inputs
        self.hash_key = hash_key
        self._policies: dict[tuple[str, int], dict[str, str]] = {}

    def to_rows(
        self, batch: Iterable[Logged], failed: Callable[[Logged], None]
    ) -> list[PredictionRow]:
        """The batch's rows, in one pass; a record whose row cannot be built is handed to
        ``failed`` and left out (the flush thread's hot loop: this is why it is one loop
        with its lookups hoisted, and why rows are made as plain tuples)."""
        rows: list[PredictionRow] = []
        append = rows.append
        new_row = tuple.__new__
        dumps, plain = orjson.dumps, _plain
        policies = self._policies
        for logged in batch:
            answer = logged.answer
            request_id = logged.request_id
            outputs = inputs = None
            try:
                if answer is not None:
                    response = answer.response
                    outputs = dumps(response.outputs, option=_JSON_OPTIONS, default=plain)
                    if policies.get((logged.model, response.version)) is ALL_FULL:
                        # the usual numeric model: the inputs as they came
                        inputs = dumps(answer.request.inputs, option=_JSON_OPTIONS, default=plain)
                    else:
                        inputs = self._inputs(logged.model, answer)
                    given = answer.request.id  # V2's ``id``, when one feedback can name
                    if given and len(given) <= MAX_REQUEST_ID_CHARS:
                        request_id = given
                    if "\x00" in request_id:  # PostgreSQL text refuses NUL: the batch would fail
                        request_id = request_id.replace("\x00", "\ufffd")
                caller = logged.caller
                row = (
                    logged.at,
                    request_id[:MAX_REQUEST_ID_CHARS],
                    logged.model,
                    int(logged.version),
                    logged.arm,
                    None if not caller or ":" in caller else caller,  # never an address
                    logged.latency_s * 1000,
                    answer is None,
                    None if outputs is None else outputs.decode(),
                    None if inputs is None else inputs.decode(),
                )
            except Exception:
                failed(logged)
                continue
            append(new_row(PredictionRow, row))
        return rows

    def _inputs(self, model: str, answer: Answer) -> bytes | None:
        policies = self._policy(model, answer)
        if policies is ALL_FULL:  # the usual numeric model: the inputs as they came
            return _json(answer.request.inputs)
        kept: dict[str, Any] = {}
        for name, values in answer.request.inputs.items():
            policy = policies.get(name, "full")
            if policy == "full":
                kept[name] = values
            elif policy == "hash":
                kept[name] = self._hashed(values)
        return _json(kept) if kept else None

    def _policy(self, model: str, answer: Answer) -> dict[str, str]:
        """Each input's ``full``/``hash``/``none`` (:data:`ALL_FULL` when every one is
        ``full``), once per model version."""
        key = (model, answer.response.version)
        found = self._policies.get(key)
        if found is None:
            chosen = self.log_inputs(model)
            found = {
                spec.name: chosen or ("hash" if spec.datatype == "BYTES" else "full")
                for spec in answer.signature.inputs
            }
            if all(policy == "full" for policy in found.values()):
                found = ALL_FULL
            self._policies[key] = found
        return found

    def _hashed(self, values: Any) -> Any:
        """Each value's keyed hash (32 hex digits), in the values' shape."""
        array = np.asarray(values, dtype=object)
        digests = [self._digest(value) for value in array.ravel().tolist()]
        return np.asarray(digests, dtype=object).reshape(array.shape).tolist()

    def _digest(self, value: Any) -> str:
        data = value if isinstance(value, bytes) else str(value).encode()
        return hashlib.blake2b(data, key=self.hash_key, digest_size=16).hexdigest()


def _json(document: Any) -> bytes:
    return orjson.dumps(document, option=_JSON_OPTIONS, default=_plain)


def _plain(value: Any) -> Any:
    """What orjson cannot write by itself: text as bytes, odd numpy arrays and scalars."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return to_plain(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} has no JSON form")
