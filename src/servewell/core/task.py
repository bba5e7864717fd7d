"""What a model predicts: one of a set of classes, or a number."""

from __future__ import annotations

from typing import Literal

Task = Literal["classification", "regression"]
