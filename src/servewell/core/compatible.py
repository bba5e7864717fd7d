"""Whether one model can stand in for another: every request the first accepts, the
second accepts, and it gives every output the first declares, alike.

A fallback model (``models.<name>.fallbacks: [fraud@2]``) is handed the primary's
decoded request as it is, and its answer is encoded as the primary's would be (REST
turns ``label`` into classes with the primary's ``class_labels``), so "alike" is strict:
the same input names and datatypes, shapes that fit, the same feature order and
classes, and no narrower limits (missing values, NaN, feature ranges, rows a request).
"""

from __future__ import annotations

from servewell.core.signature import Signature, TensorSpec


def incompatibility(primary: Signature, other: Signature, other_name: str) -> str | None:
    """Why ``other`` (named ``other_name`` in the message: ``"fraud@2"``) cannot answer
    for ``primary``, in a few words naming the first mismatch; None when it can."""
    return (
        _inputs_mismatch(primary, other, other_name)
        or _limits_mismatch(primary, other, other_name)
        or _outputs_mismatch(primary, other, other_name)
    )


def _inputs_mismatch(primary: Signature, other: Signature, who: str) -> str | None:
    theirs = {spec.name: spec for spec in other.inputs}
    for spec in primary.inputs:
        their = theirs.get(spec.name)
        if their is None:
            return f"{who} has no input '{spec.name}'"
        wrong = _tensor_mismatch(spec, their, who, "takes", strict=True)
        if wrong:
            return wrong
        if spec.nullable and not their.nullable:
            return f"{who} takes no missing values in '{spec.name}'"
        if spec.datetime != their.datetime:
            return f"{who} reads '{spec.name}' {'as' if their.datetime else 'not as'} datetimes"
    ours = {spec.name for spec in primary.inputs}
    for spec in other.inputs:
        if spec.name not in ours:
            return f"{who} needs the input '{spec.name}', which the model does not take"
    if primary.feature_names is not None and other.feature_names != primary.feature_names:
        return f"{who} has other feature_names (or another order)"
    return None


def _limits_mismatch(primary: Signature, other: Signature, who: str) -> str | None:
    if primary.allow_nan and not other.allow_nan:
        return f"{who} does not take NaN"
    for feature, bounds in other.feature_ranges.items():
        ours = primary.feature_ranges.get(feature)
        low = None if ours is None else ours.min
        high = None if ours is None else ours.max
        if (bounds.min is not None and (low is None or low < bounds.min)) or (
            bounds.max is not None and (high is None or high > bounds.max)
        ):
            return f"{who} takes a narrower range of '{feature}'"
    most = other.max_batch_size
    if most is not None and (primary.max_batch_size is None or primary.max_batch_size > most):
        return f"{who} takes at most {most} rows a request"
    return None


def _outputs_mismatch(primary: Signature, other: Signature, who: str) -> str | None:
    theirs = {spec.name: spec for spec in other.outputs}
    for spec in primary.outputs:
        their = theirs.get(spec.name)
        if their is None:
            return f"{who} has no output '{spec.name}'"
        wrong = _tensor_mismatch(spec, their, who, "gives", strict=False)
        if wrong:
            return wrong
    if primary.class_labels is not None and other.class_labels != primary.class_labels:
        return f"{who} has other class_labels (or another order)"
    return None


def _tensor_mismatch(
    ours: TensorSpec, theirs: TensorSpec, who: str, verb: str, *, strict: bool
) -> str | None:
    if theirs.datatype != ours.datatype:
        return f"{who} {verb} '{ours.name}' as {theirs.datatype}, not {ours.datatype}"
    if not shapes_fit(ours.shape, theirs.shape, strict=strict):
        return f"{who} {verb} '{ours.name}' of shape {list(theirs.shape)}, not {list(ours.shape)}"
    return None


def shapes_fit(ours: tuple[int, ...], theirs: tuple[int, ...], *, strict: bool) -> bool:
    """Same rank, and each dimension equal or variable (-1) in ``theirs``; unless
    ``strict`` (an input: ours takes any size there, theirs must too), -1 in ``ours``
    fits any size too (an output: ours promises nothing about it)."""
    return len(ours) == len(theirs) and all(
        b in (-1, a) or (a == -1 and not strict) for a, b in zip(ours, theirs, strict=True)
    )
