"""Runtimes: the pieces that actually run a model (ONNX Runtime, scikit-learn)."""

from servewell.runtime.base import Runtime, sample_inputs
from servewell.runtime.factory import FORMATS, create_runtime, detect_format

__all__ = ["FORMATS", "Runtime", "create_runtime", "detect_format", "sample_inputs"]
