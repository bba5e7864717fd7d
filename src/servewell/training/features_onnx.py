"""The derived-feature step in ONNX operators, so trained pipelines convert whole.

skl2onnx knows scikit-learn's own steps; this module teaches it
:class:`~servewell.training.features.DerivedFeatures`. Its parser declares one output per
column the next step (the ColumnTransformer) selects by name: the raw numeric and text
columns, then each derived column. The converter computes them as the step does:
numbers in double precision (cast to the conversion's precision at the end), text
passed through (a missing value is ``""`` on both sides), and datetime text parsed from
the canonical ``YYYY-MM-DDTHH:MM:SS`` layout that request validation guarantees
(:mod:`servewell.core.datetimes`), with civil-calendar arithmetic for the parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from servewell.training.config import DerivedFeature

#: skl2onnx's name for the step.
ALIAS = "ServewellDerivedFeatures"
#: What a conversion computes numbers in; ``precision`` is the step's skl2onnx option.
PRECISIONS = ("float", "double")
#: StringSplit (the datetime parser) exists from this ONNX opset on.
MIN_OPSET = 20
SECONDS_PER_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: Stands in for a missing datetime while parsing; the result is NaN.
EPOCH_TEXT = "1970-01-01T00:00:00"


def register_converter(step_class: type) -> None:
    """Register the step's parser, shape calculator and converter with skl2onnx."""
    from skl2onnx import update_registered_converter

    update_registered_converter(
        step_class,
        ALIAS,
        _shapes,
        _convert,
        parser=_parse,
        options={"precision": list(PRECISIONS)},
    )


def _precision(scope: Any, model: Any) -> str:
    return str(scope.get_options(model, {"precision": "float"})["precision"])


def _parse(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> list[Any]:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    number = DoubleTensorType if _precision(scope, model) == "double" else FloatTensorType
    operator = scope.declare_local_operator(ALIAS, model)
    operator.inputs = list(inputs)
    datetimes = set(model.datetime_columns)
    for variable in inputs:
        if variable.raw_name in datetimes:
            continue  # parsed for the derived features only, as in the step
        kind = StringTensorType if _is_text(variable) else number
        operator.outputs.append(scope.declare_local_variable(variable.raw_name, kind([None, 1])))
    for spec in model.features:
        for name in DerivedFeature.model_validate(spec).outputs:
            operator.outputs.append(scope.declare_local_variable(name, number([None, 1])))
    return list(operator.outputs)


def _shapes(operator: Any) -> None:
    """Every output is one column; the parser typed each already."""


def _is_text(variable: Any) -> bool:
    from skl2onnx.common.data_types import StringTensorType

    return isinstance(variable.type, StringTensorType)


def _convert(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    model, nodes = operator.raw_operator, _Nodes(scope, container)
    datetimes = set(model.datetime_columns)
    if datetimes and container.target_opset < MIN_OPSET:
        raise RuntimeError(f"parsing datetimes needs ONNX opset {MIN_OPSET}")
    columns: dict[str, str] = {}
    stamps: dict[str, _Stamp] = {}
    for variable in operator.inputs:
        name = variable.raw_name
        if name in datetimes:
            stamps[name] = _parse_datetime(nodes, variable.onnx_name)
        elif _is_text(variable):
            columns[name] = variable.onnx_name
        else:
            columns[name] = nodes.op("Cast", variable.onnx_name, to=TensorProto.DOUBLE)
    for spec in model.features:
        feature = DerivedFeature.model_validate(spec)
        columns.update(_derive(nodes, feature, columns, stamps))
    target = TensorProto.DOUBLE if _precision(scope, model) == "double" else TensorProto.FLOAT
    for variable in operator.outputs:
        source = columns[variable.raw_name]
        if _is_text(variable):
            nodes.op("Identity", source, output=variable.onnx_name)
        else:
            nodes.op("Cast", source, output=variable.onnx_name, to=target)


class _Nodes:
    """Adds nodes and constants to the graph skl2onnx is building."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope = scope
        self.container = container

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attrs: Any) -> str:
        """The node's (first) output; StringSplit's second one, the counts, goes unused."""
        output = output or str(self.scope.get_unique_variable_name(op_type.lower()))
        outputs = [output]
        if op_type == "StringSplit":
            outputs.append(str(self.scope.get_unique_variable_name("counts")))
        name = self.scope.get_unique_operator_name(op_type)
        self.container.add_node(op_type, list(inputs), outputs, name=name, **attrs)
        return output

    def const(self, value: float | str | int) -> str:
        from onnx import TensorProto

        name = str(self.scope.get_unique_variable_name("const"))
        if isinstance(value, str):
            self.container.add_initializer(name, TensorProto.STRING, [], [value.encode()])
        elif isinstance(value, int):
            self.container.add_initializer(name, TensorProto.INT64, [], [value])
        else:
            self.container.add_initializer(name, TensorProto.DOUBLE, [], [float(value)])
        return name

    def floor_div(self, a: str, divisor: float) -> str:
        return self.op("Floor", self.op("Div", a, self.const(divisor)))

    def affine(self, a: str, scale: float, offset: float) -> str:
        """``a * scale + offset``."""
        return self.op("Add", self.op("Mul", a, self.const(scale)), self.const(offset))

    def sum(self, *terms: str) -> str:
        total = terms[0]
        for term in terms[1:]:
            total = self.op("Add", total, term)
        return total


@dataclass(frozen=True, slots=True)
class _Stamp:
    """A parsed datetime column: its calendar fields, seconds since 1970, what is missing."""

    fields: dict[str, str]
    seconds: str
    missing: str


def _parse_datetime(nodes: _Nodes, text: str) -> _Stamp:
    from onnx import TensorProto

    missing = nodes.op("Equal", text, nodes.const(""))
    filled = nodes.op("Where", missing, nodes.const(EPOCH_TEXT), text)
    halves = nodes.op("StringSplit", filled, delimiter="T", maxsplit=1)
    date, time = (nodes.op("Gather", halves, nodes.const(i), axis=2) for i in (0, 1))
    ymd = nodes.op("Cast", nodes.op("StringSplit", date, delimiter="-"), to=TensorProto.DOUBLE)
    hms = nodes.op("Cast", nodes.op("StringSplit", time, delimiter=":"), to=TensorProto.DOUBLE)
    year, month, day = (nodes.op("Gather", ymd, nodes.const(i), axis=2) for i in (0, 1, 2))
    hour, minute, second = (nodes.op("Gather", hms, nodes.const(i), axis=2) for i in (0, 1, 2))
    days = _days_from_civil(nodes, year, month, day)
    january_first = _days_from_civil(nodes, year, nodes.const(1.0), nodes.const(1.0))
    seven = nodes.const(7.0)
    weekday_raw = nodes.op("Mod", nodes.affine(days, 1.0, 3.0), seven, fmod=1)  # 1970-01-01: Thu
    weekday = nodes.op("Mod", nodes.op("Add", weekday_raw, seven), seven, fmod=1)
    dayofyear = nodes.affine(nodes.op("Sub", days, january_first), 1.0, 1.0)
    seconds = nodes.sum(
        nodes.op("Mul", days, nodes.const(86400.0)),
        nodes.op("Mul", hour, nodes.const(3600.0)),
        nodes.op("Mul", minute, nodes.const(60.0)),
        second,
    )
    fields = {
        "year": year, "month": month, "day": day, "weekday": weekday,
        "hour": hour, "minute": minute, "dayofyear": dayofyear,
    }  # fmt: skip
    return _Stamp(fields, seconds, missing)


def _days_from_civil(nodes: _Nodes, year: str, month: str, day: str) -> str:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    from onnx import TensorProto

    early = nodes.op(
        "Cast", nodes.op("LessOrEqual", month, nodes.const(2.0)), to=TensorProto.DOUBLE
    )
    shifted_year = nodes.op("Sub", year, early)  # the year starts on March 1st
    era = nodes.floor_div(shifted_year, 400.0)
    year_of_era = nodes.op("Sub", shifted_year, nodes.op("Mul", era, nodes.const(400.0)))
    march_month = nodes.sum(
        nodes.affine(month, 1.0, -3.0), nodes.op("Mul", early, nodes.const(12.0))
    )
    day_of_year = nodes.sum(
        nodes.floor_div(nodes.affine(march_month, 153.0, 2.0), 5.0), nodes.affine(day, 1.0, -1.0)
    )
    day_of_era = nodes.sum(
        nodes.op("Mul", year_of_era, nodes.const(365.0)),
        nodes.floor_div(year_of_era, 4.0),
        nodes.op("Neg", nodes.floor_div(year_of_era, 100.0)),
        day_of_year,
    )
    return nodes.sum(
        nodes.op("Mul", era, nodes.const(146097.0)), day_of_era, nodes.const(-719468.0)
    )


def _derive(
    nodes: _Nodes, feature: DerivedFeature, columns: dict[str, str], stamps: dict[str, _Stamp]
) -> dict[str, str]:
    """The new column(s) of one derived feature, as DerivedFeatures computes them."""
    operation, sources = feature.operation, feature.sources
    if operation == "datetime":
        stamp = stamps[sources[0]]
        return {
            f"{feature.name}_{part}": _unless_missing(nodes, stamp.fields[part], stamp.missing)
            for part in feature.parts
        }
    if operation == "difference" and sources[0] in stamps:
        first, second = stamps[sources[0]], stamps[sources[1]]
        seconds = nodes.op("Sub", first.seconds, second.seconds)
        value = nodes.op("Div", seconds, nodes.const(SECONDS_PER_UNIT[feature.unit]))
        missing = nodes.op("Or", first.missing, second.missing)
        return {feature.name: _unless_missing(nodes, value, missing)}
    a = columns[sources[0]]
    if operation == "log":
        log1p = nodes.op("Log", nodes.affine(nodes.op("Abs", a), 1.0, 1.0))
        return {feature.name: nodes.op("Mul", nodes.op("Sign", a), log1p)}
    b = columns[sources[1]]
    if operation == "ratio":
        zero = nodes.op("Equal", b, nodes.const(0.0))
        ratio = nodes.op("Div", a, b)
        return {feature.name: nodes.op("Where", zero, nodes.const(feature.fill), ratio)}
    return {feature.name: nodes.op("Sub" if operation == "difference" else "Mul", a, b)}


def _unless_missing(nodes: _Nodes, value: str, missing: str) -> str:
    return nodes.op("Where", missing, nodes.const(float(np.nan)), value)
