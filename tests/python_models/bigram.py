"""BigramModel: a tiny text generator for the chat endpoint (signature: chat.json).

Its artifacts hold ``bigrams.json``, counts of which word follows which in a corpus
(``train_bigrams`` in the tests builds it), and optionally ``fail_while``: a file whose
existence makes every request fail. Each row of ``messages`` is a JSON array of chat
messages; the answer continues from the last word of the last message: at temperature
0 the most frequent next word each time (ties: the first in alphabetical order), above
0 sampled from the counts raised to 1/temperature; it stops at the corpus's sentence
end or after ``max_tokens`` words (0: 16), ``finish_reason`` ``stop`` or ``length``;
its token counts are -1 (not counted: the endpoint counts them).
A last message starting ``repeat:`` is answered with the rest of it, as it is.
"""

import json
from pathlib import Path

import numpy as np

END = "</s>"


class BigramModel:
    def load(self, artifacts_dir: Path) -> None:
        data = json.loads((artifacts_dir / "bigrams.json").read_text())
        self.following: dict[str, dict[str, int]] = data["following"]
        self.fail_while = data.get("fail_while")
        self.rng = np.random.default_rng()

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.fail_while and Path(self.fail_while).exists():
            raise RuntimeError("this model fails while its switch file exists")
        texts, reasons = [], []
        for row, temperature, max_tokens in zip(
            inputs["messages"], inputs["temperature"], inputs["max_tokens"], strict=True
        ):
            text, reason = self._answer(_last_message(row), float(temperature), int(max_tokens))
            texts.append(text)
            reasons.append(reason)
        unknown = np.full(len(texts), -1, dtype=np.int64)  # the endpoint counts tokens
        return {
            "text": np.array(texts, dtype=object),
            "finish_reason": np.array(reasons, dtype=object),
            "prompt_tokens": unknown,
            "completion_tokens": unknown,
        }

    def _answer(self, prompt: str, temperature: float, max_tokens: int) -> tuple[str, str]:
        if prompt.startswith("repeat:"):
            return prompt.removeprefix("repeat:").strip(), "stop"
        words = prompt.lower().split()
        word = words[-1].strip(".,!?") if words else "<s>"
        if word not in self.following:
            word = "<s>"
        answer: list[str] = []
        limit = max_tokens or 16
        while len(answer) < limit:
            word = self._next(word, temperature)
            if word == END:
                return " ".join(answer), "stop"
            answer.append(word)
        return " ".join(answer), "length"

    def _next(self, word: str, temperature: float) -> str:
        counts = self.following.get(word) or self.following["<s>"]
        names = sorted(counts)
        weights = np.array([counts[name] for name in names], dtype=float)
        if temperature == 0:
            return names[int(np.argmax(weights))]
        weights = weights ** (1.0 / temperature)
        return names[int(self.rng.choice(len(names), p=weights / weights.sum()))]


def _last_message(row: object) -> str:
    raw = row.decode("utf-8", errors="replace") if isinstance(row, bytes) else str(row)
    try:
        messages = json.loads(raw)
        return str(messages[-1]["content"])
    except (ValueError, LookupError, TypeError):
        return raw  # the warm-up's sample row is no JSON
