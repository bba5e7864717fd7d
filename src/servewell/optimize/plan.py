"""What a quantization is asked to do: the method, and for int8 which operator types,
per channel or per tensor, and (static) how activation ranges are calibrated.

int8 quantizes the *weighted* operators by default (MatMul with a constant B, Gemm, Conv,
Gather of an embedding table, …): their weights are where the bytes and the arithmetic
are. Quantizing every operator ONNX Runtime has a form for (``all``) also quantizes the
activations between them, including a table's raw inputs, whose columns share one scale
per tensor (a column in thousands next to one in hundredths): on the breast-cancer demo
that costs 11 accuracy points, the weighted operators alone none. Weights are quantized
per output channel by default (one scale per column of a MatMul's B): a layer with one
large weight keeps the precision of the others, at a few hundred bytes more. Activation
ranges are calibrated by their minimum and maximum by default: the histogram methods
(entropy, percentile, distribution) clip outliers, which pays on large networks with
many calibration rows, not on a table's few hundred.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from servewell.errors import InvalidInput

Quantization = Literal["none", "dynamic-int8", "static-int8", "fp16"]
QUANTIZATIONS: tuple[Quantization, ...] = ("none", "dynamic-int8", "static-int8", "fp16")
INT8: tuple[Quantization, ...] = ("dynamic-int8", "static-int8")
CalibrationMethod = Literal["minmax", "entropy", "percentile", "distribution"]
CALIBRATION_METHODS: tuple[CalibrationMethod, ...] = (
    "minmax",
    "entropy",
    "percentile",
    "distribution",
)
#: ``--operators`` choices besides an explicit list of operator types.
WEIGHTED, ALL = "weighted", "all"

#: Operators whose weights (initializers) int8 quantizes: what ``weighted`` means.
WEIGHTED_OPERATORS = frozenset(
    {
        "MatMul",
        "Gemm",
        "Conv",
        "ConvTranspose",
        "Gather",
        "Attention",
        "LSTM",
        "EmbedLayerNormalization",
    }
)


@dataclass(frozen=True, slots=True)
class Int8Plan:
    """How int8 quantization is done."""

    operators: str = WEIGHTED
    """'weighted', 'all', or operator types separated by commas ('MatMul,Gemm')."""
    per_channel: bool = True
    """One scale per output channel of a weight, else one per tensor."""
    calibration_method: CalibrationMethod = "minmax"
    """static int8: how activation ranges are read from the calibration rows."""

    def to_dict(self, method: Quantization) -> dict[str, Any]:
        plan: dict[str, Any] = {
            "operators": list(int8_operators(method, self.operators)),
            "per_channel": self.per_channel,
        }
        if method == "static-int8":
            plan["calibration_method"] = self.calibration_method
        return plan


def check_quantization(name: str) -> Quantization:
    for known in QUANTIZATIONS:
        if name == known:
            return known
    raise InvalidInput(f"unknown quantization '{name}'; choose one of {', '.join(QUANTIZATIONS)}")


def check_calibration_method(name: str) -> CalibrationMethod:
    for known in CALIBRATION_METHODS:
        if name == known:
            return known
    raise InvalidInput(
        f"unknown calibration method '{name}'; choose one of {', '.join(CALIBRATION_METHODS)}"
    )


def int8_operators(method: Quantization, choice: str) -> tuple[str, ...]:
    """The operator types ``choice`` ('weighted', 'all', or 'A,B') quantizes with
    ``method``, refusing a type that ``method`` has no int8 form for."""
    known = _int8_forms(method)
    if choice == ALL:
        return tuple(sorted(known))
    if choice == WEIGHTED:
        return tuple(sorted(known & WEIGHTED_OPERATORS))
    wanted = [name.strip() for name in choice.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if not wanted or unknown:
        raise InvalidInput(
            f"--operators: {method} has no int8 form for {', '.join(unknown) or 'nothing'}; "
            f"give '{WEIGHTED}', '{ALL}', or types from {', '.join(sorted(known))}"
        )
    return tuple(dict.fromkeys(wanted))


def _int8_forms(method: Quantization) -> frozenset[str]:
    """Operator types ONNX Runtime's quantizer for ``method`` has an int8 form for (what
    it quantizes when given no list)."""
    from onnxruntime.quantization.registry import (
        IntegerOpsRegistry,
        QDQRegistry,
        QLinearOpsRegistry,
    )

    if method == "dynamic-int8":
        return frozenset(IntegerOpsRegistry)
    return frozenset(QDQRegistry) | frozenset(QLinearOpsRegistry)
