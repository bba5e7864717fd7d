"""The chat endpoint's test models: a bigram text generator (``python_models/bigram.py``)
trained here on a tiny corpus, registered as a Python model with the chat signature."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from pathlib import Path

from servewell.bootstrap import Services
from servewell.registry import ModelVersion
from serving_models import register_python

CORPUS = (
    "the cat sat on the mat . the dog sat on the log . the cat ate the fish . "
    "a dog ran to the park . the bird sang in the tree ."
)


def train_bigrams(corpus: str) -> dict[str, dict[str, int]]:
    """Which word follows which, and how often; ``<s>`` starts and ``</s>`` ends each
    sentence (a ``.``)."""
    following: dict[str, Counter[str]] = defaultdict(Counter)
    for sentence in corpus.split(" . "):
        words = ["<s>", *sentence.strip(" .").split(), "</s>"]
        for word, after in itertools.pairwise(words):
            following[word][after] += 1
    return {word: dict(counts) for word, counts in following.items()}


def register_bigram(
    services: Services, name: str, folder: Path, fail_while: Path | None = None
) -> ModelVersion:
    """A bigram model trained on :data:`CORPUS` as the next version of ``name``; it
    fails while ``fail_while`` exists."""
    artifacts = folder / f"{name}-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    data = {"following": train_bigrams(CORPUS), "fail_while": str(fail_while or "")}
    (artifacts / "bigrams.json").write_text(json.dumps(data))
    return register_python(services, name, "bigram", signature="chat.json", artifacts=artifacts)
