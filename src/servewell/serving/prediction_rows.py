"""A logged prediction as the request path leaves it, and as the database stores it.

The request path makes a :class:`Logged` with :meth:`RowBuilder.logged`: plain values
only (the outputs, and the inputs logged in full, as JSON text), so the record holds
nothing the garbage collector must follow and nothing of the request is kept alive
while it waits in the buffer (a second of requests' object graphs, kept, made every full
collection of the event loop's thread slower: bench/README.md). The log's flush thread
turns a batch of them into rows with :meth:`RowBuilder.to_rows`: outputs as the model
gave them, inputs as ``models.<name>.monitoring.log_inputs`` says (``full``: the values;
``hash``: a keyed BLAKE2b of each value, so equal values stay equal and nothing readable
is kept; ``none``: left out; unset: ``full`` for numbers, ``hash`` for text, i.e.
``BYTES`` inputs). Hashing stays in the flush thread: a record to hash keeps its answer.

A record also keeps the arrays the window sketches read (``serving/prediction_sketches.py``),
so the flush thread need not parse back the JSON written a moment before: the output
holding the prediction, as the model gave it, and the inputs logged in full as validation
read them before their cast (``InferResponse.sent``: what was sent, as numbers; nothing
more to compute here); only what the sketches read. An array, and a dict of arrays, are
nothing the garbage collector follows. Read through :func:`as_logged`, each is what its
JSON reads back as.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np
import orjson

from servewell.core.feedback import MAX_REQUEST_ID_CHARS
from servewell.core.inference import InferRequest, InferResponse
from servewell.core.rows import to_plain
from servewell.core.signature import Signature
from servewell.core.task import task_of
from servewell.observability import RequestRecord
from servewell.registry.predictions import PredictionRow

#: The hash key when ``monitoring.hash_key`` is not set: equal values still hash alike
#: everywhere, but anyone can recompute the hash of a guessed value.
DEFAULT_HASH_KEY = b"servewell-prediction-log"
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
Array = np.ndarray[Any, Any]


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
    """The V2 ``id`` when the caller gave one feedback can name, else the request's id."""
    model: str
    version: str
    arm: str | None
    """The traffic arm that answered, as its policy names it (None: not routed)."""
    caller: str
    """A key's name, or ``ip:<address>`` without keys (not stored)."""
    latency_s: float
    outputs: str | None
    """The outputs as JSON; None for a response-cache hit (the answer is an earlier
    one's bytes)."""
    inputs: str | Answer | None
    """The inputs as JSON when every one is logged in full; the answer when some are
    hashed (in the flush thread); None when none is logged, or for a cache hit."""
    input_arrays: dict[str, Array] | None
    """With ``inputs`` as JSON: each input as validation read it (``InferResponse.sent``,
    numbers: what :func:`as_logged` reads as its JSON does), for the window sketches;
    None when there is none, or no JSON."""
    output_arrays: dict[str, Array] | None
    """The output holding the prediction, as the model gave it (read through
    :func:`as_logged`), for the window sketches; None for a cache hit, a record made
    without arrays, or a model without one."""


#: The policies of a model whose every input is logged in full, and of one whose
#: every input is left out.
ALL_FULL: dict[str, str] = {}
NONE_KEPT: dict[str, str] = {}

InputPolicy = Callable[[str], str | None]
"""``log_inputs`` as set for a model (None: by datatype)."""


class RowBuilder:
    """Makes :class:`Logged` records on the request path (:meth:`logged`) and turns
    batches of them into rows of ``predictions`` in the flush thread (:meth:`to_rows`)."""

    def __init__(self, log_inputs: InputPolicy, hash_key: bytes = DEFAULT_HASH_KEY) -> None:
        self.log_inputs = log_inputs
        self.hash_key = hash_key
        self._versions: dict[tuple[str, int], tuple[dict[str, str], str | None]] = {}
        """Each version's input policies and the output holding its prediction
        (``core/task.task_of``), decided once (a dict's get and set are atomic: the
        event loop fills it, the flush thread reads it)."""

    def logged(
        self,
        record: RequestRecord,
        arm: str | None,
        latency_s: float,
        answer: Answer | None,
        *,
        arrays: bool = True,
    ) -> Logged:
        """The record of one served prediction (``answer`` None: a response-cache hit;
        ``arrays`` False: without arrays for the sketches); raises what encoding its
        outputs or inputs raises."""
        model, request_id = record.model, record.request_id
        if answer is None:
            row = (time.time(), request_id, model, record.version, arm, record.caller)
            return tuple.__new__(Logged, (*row, latency_s, None, None, None, None))
        response = answer.response
        # decoded at once: orjson's bytes, kept, fragment the heap (a page fault every few
        # records, ~3 µs each: bench/README.md); a str copy of them lands in small blocks
        outputs = orjson.dumps(response.outputs, option=_JSON_OPTIONS, default=_plain).decode()
        version = self._versions.get((model, response.version))
        if version is None:
            version = self._version(model, answer)
        policies, predicted = version
        inputs: str | Answer | None = answer
        input_arrays = None
        if policies is ALL_FULL:  # the usual numeric model: the inputs as they came
            sent = answer.request.inputs
            inputs = _json(sent).decode()
            read = response.sent  # validation's reading of them
            if arrays and read and (not answer.signature.allow_nan or _finite(read)):
                input_arrays = read
        elif policies is NONE_KEPT:
            inputs = None
        given = answer.request.id  # V2's ``id``, when one feedback can name
        if given and len(given) <= MAX_REQUEST_ID_CHARS:
            # PostgreSQL text refuses NUL: the whole batch would fail
            request_id = given.replace("\x00", "\ufffd") if "\x00" in given else given
        row = (time.time(), request_id, model, record.version, arm, record.caller)
        output_arrays = None
        if arrays and predicted in response.outputs:  # only what the sketches read
            output_arrays = {predicted: response.outputs[predicted]}
        return tuple.__new__(
            Logged, (*row, latency_s, outputs, inputs, input_arrays, output_arrays)
        )

    def to_rows(
        self, batch: Iterable[Logged], failed: Callable[[Logged], None]
    ) -> tuple[list[PredictionRow], list[Logged]]:
        """The batch's rows, in one pass, and the records they were built from (in the
        same order); a record whose row cannot be built is handed to ``failed`` and left
        out (the flush thread's hot loop: this is why it is one loop with its lookups
        hoisted, and why rows are made as plain tuples)."""
        rows: list[PredictionRow] = []
        kept: list[Logged] = []
        append, keep = rows.append, kept.append
        new_row = tuple.__new__
        for logged in batch:
            outputs, inputs = logged.outputs, logged.inputs
            try:
                if inputs is not None and not isinstance(inputs, str):  # to hash
                    inputs = self._inputs(logged.model, inputs)
                caller = logged.caller
                row = (
                    logged.at,
                    logged.request_id,
                    logged.model,
                    int(logged.version),
                    logged.arm,
                    None if not caller or ":" in caller else caller,  # never an address
                    logged.latency_s * 1000,
                    outputs is None,
                    outputs,
                    inputs,
                )
            except Exception:
                failed(logged)
                continue
            append(new_row(PredictionRow, row))
            keep(logged)
        return rows, kept

    def _inputs(self, model: str, answer: Answer) -> str | None:
        """The inputs of a model that hashes some: in full, hashed or left out, each as
        its policy says."""
        policies = self._policy(model, answer)
        kept: dict[str, Any] = {}
        for name, values in answer.request.inputs.items():
            policy = policies.get(name, "full")
            if policy == "full":
                kept[name] = values
            elif policy == "hash":
                kept[name] = self._hashed(values)
        return _json(kept).decode() if kept else None

    def _policy(self, model: str, answer: Answer) -> dict[str, str]:
        """Each input's ``full``/``hash``/``none`` (:data:`ALL_FULL` when every one is
        ``full``, :data:`NONE_KEPT` when none is kept), once per model version."""
        return self._version(model, answer)[0]

    def _version(self, model: str, answer: Answer) -> tuple[dict[str, str], str | None]:
        """The version's input policies (:meth:`_policy`) and the output holding its
        prediction, decided once."""
        key = (model, answer.response.version)
        found = self._versions.get(key)
        if found is None:
            chosen = self.log_inputs(model)
            policies = {
                spec.name: chosen or ("hash" if spec.datatype == "BYTES" else "full")
                for spec in answer.signature.inputs
            }
            if all(policy == "full" for policy in policies.values()):
                policies = ALL_FULL
            elif all(policy == "none" for policy in policies.values()):
                policies = NONE_KEPT
            found = self._versions[key] = (policies, task_of(answer.signature)[1])
        return found

    def _hashed(self, values: Any) -> Any:
        """Each value's keyed hash (32 hex digits), in the values' shape."""
        array = np.asarray(values, dtype=object)
        digests = [self._digest(value) for value in array.ravel().tolist()]
        return np.asarray(digests, dtype=object).reshape(array.shape).tolist()

    def _digest(self, value: Any) -> str:
        data = value if isinstance(value, bytes) else str(value).encode()
        return hashlib.blake2b(data, key=self.hash_key, digest_size=16).hexdigest()


def _finite(arrays: dict[str, Array]) -> bool:
    """Whether every float in ``arrays`` is finite: JSON writes NaN as null, so ``[1,
    NaN]`` reads back as ``[1, None]``, integers and all, where validation's array has
    ``1.0`` (a model that takes NaN and was sent one has its row's JSON read back)."""
    return all(a.dtype.kind != "f" or bool(np.isfinite(a).all()) for a in arrays.values())


def as_logged(values: Any) -> Any:
    """An array of a record's (:attr:`Logged.input_arrays`, :attr:`Logged.output_arrays`)
    as its logged JSON reads back: integers, booleans and float64 as they are (JSON holds
    them exactly; an infinity, written as null, the readings take as missing either way:
    ``prediction_reading.column_of``); anything else (float32's shortest text, bytes as
    text, objects) through that very JSON. What is no array comes from JSON already."""
    if not isinstance(values, np.ndarray):
        return values
    dtype = values.dtype
    if dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize == 8):
        return values
    document = orjson.loads(_json(values))
    try:
        return np.asarray(document)
    except (ValueError, TypeError):
        return document


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
