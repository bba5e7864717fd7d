"""The one internal request and response every protocol adapter decodes to and encodes from.

A V2 JSON body, a V2 binary body, a REST ``instances`` body and a batch job's rows all
become an :class:`InferRequest`: named inputs (lists or numpy arrays, validated later
against the model's signature) for a model reference. What the model gives back is an
:class:`InferResponse`: named numpy arrays, and which version answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from servewell.core.ref import ModelRef

Array = np.ndarray[Any, Any]


@dataclass(slots=True)
class InferRequest:
    """One request for predictions, whatever protocol it came in."""

    model: ModelRef
    inputs: Mapping[str, Any]
    """Input name -> values: a numpy array or nested lists, not yet validated."""
    outputs: tuple[str, ...] | None = None
    """The outputs wanted, in order; ``None`` means all of the model's outputs."""
    id: str | None = None
    """The caller's request id, echoed in the response."""
    datatypes: Mapping[str, str] | None = None
    """The datatype each input was sent as, when the protocol states one (V2); validation
    refuses any that is not the signature's."""


@dataclass(slots=True)
class InferResponse:
    """A model's answer to one :class:`InferRequest`."""

    model: str
    version: int
    outputs: dict[str, Array]
    """Output name -> array, one row per input row, in the order asked for."""
    id: str | None = None
    batch_size: int = 1
    """Rows in the model call that answered (this request's and others batched with it)."""
    sent: dict[str, Array] | None = None
    """The request's inputs as numpy read what was sent, before their cast to the
    signature's datatypes, when validation kept them (``validate_inputs``'s ``sent``):
    what the prediction log's window sketches read."""
