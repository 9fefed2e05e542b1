"""The FAQ knowledge base: articles written for this example, searched by meaning.

Each article is embedded once (title and body together) with fncall's packaged MiniLM model;
a question is embedded the same way and the articles are ranked by cosine similarity, so "my
parcel never showed up" finds the article titled "My parcel says delivered but I did not
receive it" without sharing its words.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FAQ_FILE = Path(__file__).with_name("faq.json")
# Below this cosine similarity an article is not an answer: unrelated questions ("what is 17
# times 23?") score about 0.05-0.2 against these articles, paraphrases of one 0.5 and more.
MIN_SCORE = 0.3
# Runners-up further than this below the best article are left out: they are neighbours on the
# same topic, and a small model answers better from one article than from several.
RUNNER_UP_GAP = 0.1


@dataclass(frozen=True, kw_only=True)
class Article:
    id: str
    title: str
    body: str


@dataclass(frozen=True, kw_only=True)
class Match:
    article: Article
    score: float


def load_articles(path: Path = FAQ_FILE) -> list[Article]:
    return [Article(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]


class FaqIndex:
    """Semantic search over the articles. The embedder loads, and the articles are embedded, on
    the first search (``embedder``: anything with ``encode(list[str]) -> unit vectors``; by
    default ``fncall.embed.default_embedder()``)."""

    def __init__(self, articles: list[Article] | None = None, *, embedder: Any = None) -> None:
        self.articles = articles if articles is not None else load_articles()
        self._embedder = embedder
        self._vectors: np.ndarray | None = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Load the embedder and embed the articles now rather than on the first search."""
        self._index()

    def _index(self) -> tuple[Any, np.ndarray]:
        with self._lock:
            if self._embedder is None:
                from fncall.embed import default_embedder

                self._embedder = default_embedder()
            if self._vectors is None:
                texts = [f"{a.title}\n{a.body}" for a in self.articles]
                self._vectors = self._embedder.encode(texts)
            return self._embedder, self._vectors

    def search(self, question: str, *, k: int = 2, min_score: float = MIN_SCORE) -> list[Match]:
        """At most ``k`` articles, best first: those scoring at least ``min_score`` and within
        ``RUNNER_UP_GAP`` of the best."""
        embedder, vectors = self._index()
        scores = vectors @ embedder.encode([question])[0]
        ranked = np.argsort(-scores)[:k]
        floor = max(min_score, float(scores[ranked[0]]) - RUNNER_UP_GAP) if k else 0.0
        return [
            Match(article=self.articles[i], score=float(scores[i]))
            for i in ranked
            if scores[i] >= floor
        ]
