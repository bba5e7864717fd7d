"""A measured figure as a person reads it: four decimals, or scientific form when four
decimals would round it to zero (an ONNX conversion's largest difference, ``3.6e-07``,
is not ``0.0000``)."""

from __future__ import annotations

#: Below this (and not zero) four decimals say too little: scientific form instead.
SMALLEST_DECIMAL = 1e-3


def format_figure(value: float) -> str:
    """``0.9649``, ``3.6e-07``, ``-2.5e-05``, ``0.0000``; ``nan`` and ``inf`` as Python
    writes them."""
    if value != 0 and abs(value) < SMALLEST_DECIMAL:
        return f"{value:.2g}"
    return f"{value:.4f}"
