"""Pure domain: signatures and their validation, V2 datatypes, model references. No I/O."""

from servewell.core.ref import ModelRef
from servewell.core.signature import FeatureRange, Signature, TensorSpec
from servewell.core.validation import InputLimits, validate_inputs

__all__ = [
    "FeatureRange",
    "InputLimits",
    "ModelRef",
    "Signature",
    "TensorSpec",
    "validate_inputs",
]
