"""Output filters: personal data in a model's text outputs is redacted or withheld.

The response cache keeps filtered answers; its keys include the model's filter settings,
so a changed policy never serves an answer filtered the old way (not even from a Redis
cache that outlived the server).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from servewell.core.pii import apply_filter
from servewell.settings import OutputFilterSettings

Array = np.ndarray[Any, Any]

WITHHELD = b"[WITHHELD: personal data]"


@dataclass
class FilterOutcome:
    outputs: dict[str, Array]
    findings: Counter[str] = field(default_factory=Counter)
    """Detections by kind (``email``, ``card``, ...), for the metrics."""
    blocked: int = 0
    """Items withheld under the ``block`` policy."""


def filter_outputs(
    outputs: Mapping[str, Array], rule: OutputFilterSettings | None
) -> FilterOutcome:
    """Apply ``rule`` to every text (BYTES) output; numbers pass through untouched."""
    if rule is None:
        return FilterOutcome(dict(outputs))
    outcome = FilterOutcome({})
    for name, array in outputs.items():
        if array.dtype != np.object_:
            outcome.outputs[name] = array
            continue
        filtered = np.empty(array.shape, dtype=np.object_)
        for index, item in np.ndenumerate(array):
            text = item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)
            result = apply_filter(text, rule.policy, rule.kinds)
            outcome.findings.update(finding.kind for finding in result.findings)
            if result.blocked:
                outcome.blocked += 1
                filtered[index] = WITHHELD
            else:
                filtered[index] = result.text.encode("utf-8")
        outcome.outputs[name] = filtered
    return outcome
