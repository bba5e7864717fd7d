"""Module classes for the torch tests; import only after :func:`torch_models.require_torch`."""

from __future__ import annotations

import torch


class MLP(torch.nn.Module):  # type: ignore[misc]
    """4 features -> 32 ReLU units -> 3 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(4, 32)
        self.out = torch.nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


class Unexportable(torch.nn.Module):  # type: ignore[misc]
    """Runs in PyTorch, but uses an operator the ONNX exporter has no form for."""

    def __init__(self) -> None:
        super().__init__()
        self.out = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cummax(x, dim=1).values)  # aten::cummax has no ONNX form


class Affine(torch.nn.Module):  # type: ignore[misc]
    """``x * scale + shift`` per feature (a fitted standardisation, as buffers)."""

    def __init__(self, scale: object, shift: object) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift
