"""What servewell adds to skl2onnx before converting a pipeline.

* Steps skl2onnx does not know may bring their own converter: a class method
  ``register_onnx_converter()`` that registers it, taking a ``precision`` option
  (``"float"`` or ``"double"``), as the training pipeline's derived-feature step does.
* ``SimpleImputer`` on double-precision numbers: skl2onnx emits ONNX-ML's ``Imputer``,
  which ONNX Runtime runs on floats only; in double precision it becomes
  ``Where(IsNaN(x), statistics, x)``. Every other case keeps skl2onnx's own converter.
"""

from __future__ import annotations

from typing import Any

#: skl2onnx's alias of SimpleImputer.
IMPUTER_ALIAS = "SklearnSimpleImputer"


def steps_of(estimator: Any) -> list[Any]:
    """Every step of a (possibly nested) Pipeline, the estimator itself otherwise."""
    steps = getattr(estimator, "steps", None)
    if not steps:
        return [estimator]
    return [inner for _, step in steps for inner in steps_of(step)]


def own_converters(estimator: Any) -> list[Any]:
    """Register the steps' own converters; the steps that have one."""
    steps = [step for step in steps_of(estimator) if hasattr(step, "register_onnx_converter")]
    for step in steps:
        step.register_onnx_converter()
    return steps


def register_double_imputer() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer

    update_registered_converter(
        SimpleImputer, IMPUTER_ALIAS, calculate_sklearn_imputer_output_shapes, _convert_imputer
    )


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    imputer = operator.raw_operator
    numbers = isinstance(operator.inputs[0].type, DoubleTensorType)
    if not (numbers and _imputes_nan(imputer)):
        convert_sklearn_imputer(scope, operator, container)
        return
    features = concatenate_variables(scope, operator.inputs, container)
    statistics = scope.get_unique_variable_name("statistics")
    values = imputer.statistics_.astype(float).tolist()
    container.add_initializer(statistics, TensorProto.DOUBLE, [1, len(values)], values)
    missing = scope.get_unique_variable_name("missing")
    container.add_node("IsNaN", [features], [missing], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where",
        [missing, statistics, features],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Where"),
    )


def _imputes_nan(imputer: Any) -> bool:
    missing = imputer.missing_values
    return isinstance(missing, float) and missing != missing
