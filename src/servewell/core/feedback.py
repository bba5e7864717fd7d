"""Ground-truth labels as callers send them: ``[{"request_id": "...", "label": ...}]``.

A label is one JSON scalar (a class name, a number, a boolean); a request id is the
text the prediction was logged under (``X-Request-ID``, or the V2 ``id``). A batch that
breaks these rules is refused whole, naming the first item that does.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from servewell.errors import InvalidInput

MAX_REQUEST_ID_CHARS = 128
MAX_LABEL_CHARS = 1024

Label = str | int | float | bool
"""A ground-truth label."""


def labels_from_json(document: Any) -> list[tuple[str, Label]]:
    """``(request_id, label)`` pairs from a decoded body; InvalidInput naming what is
    wrong (not a list, an item that is not an object, a field missing or mistyped)."""
    if not isinstance(document, list):
        raise InvalidInput(
            'the body must be a JSON list of {"request_id": "...", "label": ...} objects'
        )
    pairs = []
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            raise InvalidInput(f"item {index} is not an object with 'request_id' and 'label'")
        extra = sorted(set(item) - {"request_id", "label"})
        if extra:
            raise InvalidInput(f"item {index} has unknown field(s): {', '.join(extra)}")
        if "request_id" not in item or "label" not in item:
            missing = "request_id" if "request_id" not in item else "label"
            raise InvalidInput(f"item {index} has no '{missing}'")
        pairs.append(checked_label(item["request_id"], item["label"], f"item {index}"))
    return pairs


def checked_label(request_id: Any, label: Any, where: str) -> tuple[str, Label]:
    """One ``(request_id, label)`` pair, checked; ``where`` names it in the refusal."""
    if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_REQUEST_ID_CHARS:
        raise InvalidInput(
            f"{where}: 'request_id' must be text of 1 to {MAX_REQUEST_ID_CHARS} characters"
        )
    if "\x00" in request_id:  # no logged id holds one, and PostgreSQL text cannot
        raise InvalidInput(f"{where}: 'request_id' must not contain a NUL character")
    if isinstance(label, str):
        if len(label) > MAX_LABEL_CHARS:
            raise InvalidInput(f"{where}: the label is longer than {MAX_LABEL_CHARS} characters")
    elif isinstance(label, float):
        if not math.isfinite(label):
            raise InvalidInput(f"{where}: the label must be a finite number")
    elif not isinstance(label, int):  # bool is an int
        raise InvalidInput(
            f"{where}: the label must be text, a number or a boolean, not "
            f"{'null' if label is None else type(label).__name__}"
        )
    return request_id, label


def label_from_text(text: str) -> Label:
    """A label read from a CSV cell: a whole number, a number, else the text itself."""
    stripped = text.strip()
    for parse in (int, float):
        try:
            value = parse(stripped)
        except ValueError:
            continue
        if isinstance(value, int) or math.isfinite(value):
            return value
    return text


def comparable_label(label: Label, like: Any) -> Label | None:
    """``label`` as the kind of value ``like`` is (a prediction, a training target): a
    number for a number (text that reads as a finite number is taken), text for text;
    None when it cannot be one, such as ``"nan"`` or ``"yes"`` sent for a model whose
    classes are numbers. Labels are stored as they came, so this is where a label that
    could never match is left out (and counted by the caller) rather than compared."""
    if isinstance(like, numbers.Number):
        value = label_from_text(label) if isinstance(label, str) else label
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
            return value
        return None
    return label if isinstance(label, str) else str(label)
