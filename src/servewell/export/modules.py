"""The torch modules of the text classifier; import only where torch is installed."""

from __future__ import annotations

from typing import Any

import torch


class MeanPooledEncoder(torch.nn.Module):  # type: ignore[misc]
    """Transformer output -> mean over real (unpadded) tokens -> L2 normalisation."""

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        ).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, p=2.0, dim=1)


class SoftmaxClassifier(torch.nn.Module):  # type: ignore[misc]
    """Pooled embedding -> linear head -> class probabilities."""

    def __init__(self, pooled: torch.nn.Module, head: torch.nn.Module) -> None:
        super().__init__()
        self.pooled = pooled
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(self.pooled(input_ids, attention_mask)), dim=-1)
