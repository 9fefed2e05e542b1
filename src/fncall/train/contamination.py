"""The contamination guard: evaluation data is never training data.

Every user question of every ``bfcl_eval/data/BFCL_v4_*.json`` file is indexed once. An example
is refused when its question equals one of them after normalisation (lower case, only letters and
digits, single spaces), or when it shares at least ``min_shared`` word n-grams with one of them
and those cover ``threshold`` of either side's n-grams (light rewording, or an evaluation
question embedded in a longer one). Short questions ("What time is it?") are thus matched only
exactly, so a generic phrase does not refuse every example that contains it.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from fncall.package_data import bfcl_data_dir
from fncall.train.data import TrainingExample

NGRAM = 4
THRESHOLD = 0.6


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def ngrams(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    words = normalise(text).split()
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _questions_in(record: Any) -> Iterable[str]:
    turns = record.get("question") if isinstance(record, dict) else None
    for turn in turns or ():
        for message in turn if isinstance(turn, list) else [turn]:
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str) and content.strip():
                    yield content


def evaluation_questions(data_dir: Path | None = None) -> list[str]:
    """Every user question in the BFCL v4 evaluation files."""
    directory = data_dir or bfcl_data_dir()
    questions: list[str] = []
    for path in sorted(directory.glob("BFCL_v4_*.json")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                questions.extend(_questions_in(json.loads(line)))
            except json.JSONDecodeError:
                continue
    return questions


@dataclass
class ContaminationGuard:
    """Index of evaluation questions; ``match(question)`` returns the one it collides with."""

    questions: Sequence[str]
    threshold: float = THRESHOLD
    n: int = NGRAM
    min_shared: int = 3
    _exact: dict[str, str] = field(init=False, repr=False)
    _index: dict[tuple[str, ...], list[int]] = field(init=False, repr=False)
    _sizes: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._exact = {normalise(q): q for q in self.questions}
        self._index = defaultdict(list)
        self._sizes = []
        for i, question in enumerate(self.questions):
            grams = ngrams(question, self.n)
            self._sizes.append(len(grams))
            for gram in grams:
                self._index[gram].append(i)

    def match(self, question: str) -> str | None:
        key = normalise(question)
        if not key:
            return None
        if key in self._exact:
            return self._exact[key]
        grams = ngrams(question, self.n)
        if not grams:
            return None
        shared: Counter[int] = Counter()
        for gram in grams:
            shared.update(self._index.get(gram, ()))
        for i, count in shared.most_common(5):
            if count < self.min_shared:
                break
            if count / min(len(grams), self._sizes[i]) >= self.threshold:
                return self.questions[i]
        return None

    def filter(
        self, examples: Iterable[TrainingExample]
    ) -> tuple[list[TrainingExample], list[tuple[TrainingExample, str]]]:
        """Split examples into (kept, refused-with-the-evaluation-question-they-match)."""
        kept, refused = [], []
        for example in examples:
            hit = next(
                (
                    h
                    for m in example.messages
                    if m.role == "user" and (h := self.match(m.content or ""))
                ),
                None,
            )
            if hit is None:
                kept.append(example)
            else:
                refused.append((example, hit))
        return kept, refused


@lru_cache(maxsize=1)
def bfcl_guard() -> ContaminationGuard:
    """The guard over all BFCL v4 questions (built once per process, about a second)."""
    return ContaminationGuard(evaluation_questions())
