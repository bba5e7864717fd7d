"""Text classifiers: a Hugging Face tokenizer in front of an ONNX graph, in one file.

A request carries raw text (a V2 ``BYTES`` tensor, or a REST string); this runtime
tokenizes it and runs the graph. The artifact stays a single ``.onnx`` file, so the
content-addressed store and its sha256 checks work as for any model: the tokenizer's
JSON and a small config travel in the graph's ``metadata_props``:

* ``servewell.tokenizer`` — the ``tokenizers`` JSON (``Tokenizer.to_str()``);
* ``servewell.text`` — ``{"input": "text", "max_length": 128, "class_labels": [...]}``.

The graph takes ``input_ids`` and ``attention_mask`` (``int64 [batch, tokens]``, a
batch padded to its longest text) and gives ``probabilities`` (``[batch, classes]``);
the label is the class of the highest probability, as the signature lists them.
Tokenizing needs the ``tokenizers`` package: ``pip install 'servewell[text]'``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from servewell.core.sanitize import normalize_text
from servewell.core.signature import Datatype, Signature, TensorSpec
from servewell.errors import InvalidArtifact, InvalidInput, MissingDependency
from servewell.runtime.base import Array
from servewell.runtime.onnx import OnnxRuntime
from servewell.settings import RuntimeSettings

TOKENIZER_METADATA_KEY = "servewell.tokenizer"
TEXT_METADATA_KEY = "servewell.text"
PROBABILITIES = "probabilities"
GRAPH_INPUTS = ("input_ids", "attention_mask")


@dataclass(frozen=True, slots=True)
class TextConfig:
    """How raw text becomes the graph's inputs, and what its outputs mean."""

    class_labels: tuple[str | int, ...]
    input: str = "text"
    max_length: int = 128

    def to_json(self) -> str:
        return json.dumps(
            {"input": self.input, "max_length": self.max_length, "class_labels": self.class_labels}
        )

    @classmethod
    def from_json(cls, text: str) -> TextConfig:
        try:
            data = json.loads(text)
            return cls(
                class_labels=tuple(data["class_labels"]),
                input=str(data.get("input", "text")),
                max_length=int(data.get("max_length", 128)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArtifact(f"the text model's '{TEXT_METADATA_KEY}' is unreadable") from exc

    def signature(self) -> Signature:
        label_type: Datatype = (
            "INT64" if all(isinstance(c, int) for c in self.class_labels) else "BYTES"
        )
        return Signature(
            inputs=(TensorSpec(name=self.input, datatype="BYTES", shape=(-1,)),),
            outputs=(
                TensorSpec(name="label", datatype=label_type, shape=(-1,)),
                TensorSpec(name=PROBABILITIES, datatype="FP32", shape=(-1, len(self.class_labels))),
            ),
            class_labels=self.class_labels,
        )


def embed_text_metadata(model: Any, tokenizer_json: str, config: TextConfig) -> None:
    """Put the tokenizer and config into an ``onnx.ModelProto``'s metadata (in place)."""
    values = {TOKENIZER_METADATA_KEY: tokenizer_json, TEXT_METADATA_KEY: config.to_json()}
    kept = [entry for entry in model.metadata_props if entry.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read_text_metadata(path: Path) -> tuple[str, TextConfig]:
    """The tokenizer JSON and config embedded in a text model's file."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, OSError...
        raise InvalidArtifact(f"{path.name} is not a readable ONNX model: {exc}") from exc
    props = {entry.key: entry.value for entry in model.metadata_props}
    if TOKENIZER_METADATA_KEY not in props or TEXT_METADATA_KEY not in props:
        raise InvalidArtifact(
            f"{path.name} is an ONNX model without an embedded tokenizer; register it as "
            "format 'onnx', or export it with servewell's text exporter"
        )
    return props[TOKENIZER_METADATA_KEY], TextConfig.from_json(props[TEXT_METADATA_KEY])


def load_tokenizer(tokenizer_json: str, max_length: int) -> Any:
    """A ``tokenizers.Tokenizer`` that pads a batch to its longest text and truncates."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise MissingDependency("tokenizers", "text") from exc
    try:
        tokenizer = Tokenizer.from_str(tokenizer_json)
    except Exception as exc:  # tokenizers raises its own Exception subclass
        raise InvalidArtifact(f"the embedded tokenizer is unreadable: {exc}") from exc
    tokenizer.no_padding()
    tokenizer.enable_padding(pad_id=_pad_id(tokenizer))
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


class TextRuntime:
    """Tokenizes raw text and runs the ONNX graph behind it."""

    platform = "onnxruntime_onnx"
    may_block = False

    def __init__(
        self,
        path: Path,
        settings: RuntimeSettings | None = None,
        signature: Signature | None = None,
    ) -> None:
        self.path = path
        self.settings = settings or RuntimeSettings()
        self.signature = signature
        self._graph: OnnxRuntime | None = None
        self._tokenizer: Any = None
        self._config: TextConfig | None = None

    def load(self) -> None:
        tokenizer_json, config = read_text_metadata(self.path)
        self._tokenizer = load_tokenizer(tokenizer_json, config.max_length)
        graph = OnnxRuntime(self.path, self.settings)
        graph.load()
        missing = set(GRAPH_INPUTS) - {spec.name for spec in graph.describe().inputs}
        if missing or PROBABILITIES not in {spec.name for spec in graph.describe().outputs}:
            raise InvalidArtifact(
                f"{self.path.name}: a text model's graph takes input_ids and attention_mask "
                "and gives probabilities"
            )
        self._graph, self._config = graph, config
        self.signature = self.signature or config.signature()

    def warm_up(self) -> None:
        self.predict({self._require_config().input: np.array([b"warm up"], dtype=np.object_)})

    def encode(self, texts: Sequence[str]) -> dict[str, Array]:
        """The graph's inputs for a batch of texts (token ids and mask, padded)."""
        if self._tokenizer is None:
            raise RuntimeError("TextRuntime.load() was not called")
        encodings = self._tokenizer.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        config = self._require_config()
        assert self._graph is not None
        texts = to_texts(inputs[config.input], config.input)
        if not texts:
            width = len(config.class_labels)
            return {
                "label": self._labels(np.zeros(0, dtype=np.int64)),
                PROBABILITIES: np.zeros((0, width), dtype=np.float32),
            }
        probabilities = self._graph.predict(self.encode(texts))[PROBABILITIES]
        probabilities = np.asarray(probabilities, dtype=np.float32)
        return {
            "label": self._labels(np.argmax(probabilities, axis=1)),
            PROBABILITIES: probabilities,
        }

    def describe(self) -> Signature:
        self._require_config()
        assert self.signature is not None
        return self.signature

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
        self._graph, self._tokenizer = None, None

    def _labels(self, indexes: Array) -> Array:
        classes = self._require_config().class_labels
        if all(isinstance(c, int) for c in classes):
            return np.array([classes[i] for i in indexes], dtype=np.int64)
        return np.array([str(classes[i]).encode("utf-8") for i in indexes], dtype=np.object_)

    def _require_config(self) -> TextConfig:
        if self._config is None:
            raise RuntimeError("TextRuntime.load() was not called")
        return self._config


def to_texts(array: Array, name: str) -> list[str]:
    """One string per row from a ``[rows]`` or ``[rows, 1]`` BYTES/str tensor."""
    values = np.asarray(array, dtype=np.object_)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values.reshape(-1)
    if values.ndim != 1:
        raise InvalidInput(
            f"input '{name}' must hold one text per row, got shape {list(values.shape)}",
            input_name=name,
        )
    texts = []
    for row, value in enumerate(values):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"input '{name}' row {row} is not valid UTF-8", input_name=name
                ) from None
        if not isinstance(value, str):
            raise InvalidInput(
                f"input '{name}' row {row} is a {type(value).__name__}, not text",
                input_name=name,
            )
        texts.append(normalize_text(value))  # NFC, no control characters
    return texts


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.token_to_id("[PAD]")
    return int(pad) if pad is not None else 0
