"""The news classifier: logistic regression over MiniLM sentence vectors, one per label kind.

Training (scikit-learn's ``LogisticRegression``, its default ``C=1``, never tuned on the held-out
split) takes a second; embedding the feed takes a few. Both are cached in one ``.npz`` file keyed
by the sha256 of the headlines file, so a second run loads the weights and the feed's vectors
and does not embed the feed again. The cache holds arrays only (weights, vectors, the report
text), never a pickle: loading it cannot run code. Predictions are then a softmax over
``X @ coef.T + intercept``, which is what ``LogisticRegression.predict_proba`` computes for
several classes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from examples.finance_monitor.make_headlines import HEADLINES_FILE

LABELS = ("sentiment", "topic")
CACHE_VERSION = 1


class TextEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True, kw_only=True)
class Headline:
    id: str
    date: str  # ISO date
    lang: str
    headline: str
    company: str | None
    topic: str
    sentiment: str
    split: str  # "train" or "test" (held out: wordings never seen in training)


def load_headlines(path: Path = HEADLINES_FILE) -> list[Headline]:
    with path.open(encoding="utf-8") as lines:
        return [Headline(**json.loads(line)) for line in lines if line.strip()]


def data_hash(path: Path = HEADLINES_FILE) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class LinearModel:
    """A trained multinomial logistic regression, as plain arrays."""

    classes: tuple[str, ...]
    coef: np.ndarray  # (n_classes, dim)
    intercept: np.ndarray  # (n_classes,)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        scores = vectors @ self.coef.T + self.intercept
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, vectors: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.probabilities(vectors).argmax(axis=1)]


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """Held-out figures for one label kind."""

    label: str
    accuracy: float
    accuracy_by_lang: dict[str, float]
    majority_baseline: float  # accuracy of always answering the most common training label
    report: str  # scikit-learn's classification_report on the held-out split
    test_size: int


@dataclass(frozen=True, kw_only=True)
class NewsClassifier:
    """Sentiment and topic models, the feed's vectors, and how well the models did."""

    models: dict[str, LinearModel]
    vectors: np.ndarray  # one row per headline of the feed, in file order
    evaluations: dict[str, Evaluation]
    data_sha256: str
    from_cache: bool = False

    def classify(self, texts: Sequence[str], encoder: TextEncoder) -> list[dict[str, Any]]:
        """Label new texts: for each, every label kind's best class and its probability."""
        vectors = encoder.encode(list(texts))
        out: list[dict[str, Any]] = [{} for _ in texts]
        for label, model in self.models.items():
            probabilities = model.probabilities(vectors)
            for row, p in zip(out, probabilities, strict=True):
                best = int(p.argmax())
                row[label] = model.classes[best]
                row[f"{label}_confidence"] = round(float(p[best]), 2)
        return out

    def predictions(self, label: str) -> list[str]:
        """The model's labels for the whole feed (what the monitor reports on)."""
        return self.models[label].predict(self.vectors)


def train(headlines: Sequence[Headline], vectors: np.ndarray, sha256: str) -> NewsClassifier:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import classification_report

    train_rows = np.array([h.split == "train" for h in headlines])
    test_rows = ~train_rows
    models: dict[str, LinearModel] = {}
    evaluations: dict[str, Evaluation] = {}
    for label in LABELS:
        y = np.array([getattr(h, label) for h in headlines])
        fitted = LogisticRegression(max_iter=3000).fit(vectors[train_rows], y[train_rows])
        model = LinearModel(
            classes=tuple(str(c) for c in fitted.classes_),
            coef=fitted.coef_.astype(np.float64),
            intercept=fitted.intercept_.astype(np.float64),
        )
        models[label] = model
        predicted = np.array(model.predict(vectors[test_rows]))
        truth = y[test_rows]
        langs = np.array([h.lang for h in headlines])[test_rows]
        values, counts = np.unique(y[train_rows], return_counts=True)
        evaluations[label] = Evaluation(
            label=label,
            accuracy=float((predicted == truth).mean()),
            accuracy_by_lang={
                lang: float((predicted[langs == lang] == truth[langs == lang]).mean())
                for lang in sorted(set(langs))
            },
            majority_baseline=float((truth == values[counts.argmax()]).mean()),
            report=classification_report(truth, predicted, digits=3, zero_division=0),
            test_size=int(test_rows.sum()),
        )
    return NewsClassifier(
        models=models, vectors=vectors, evaluations=evaluations, data_sha256=sha256
    )


def cache_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / f"news-classifier-{sha256[:16]}.npz"


def save(classifier: NewsClassifier, path: Path) -> None:
    arrays: dict[str, Any] = {"vectors": classifier.vectors}
    meta: dict[str, Any] = {"version": CACHE_VERSION, "sha256": classifier.data_sha256}
    for label, model in classifier.models.items():
        arrays[f"{label}_coef"] = model.coef
        arrays[f"{label}_intercept"] = model.intercept
        meta[f"{label}_classes"] = list(model.classes)
    meta["evaluations"] = {
        label: vars(evaluation) for label, evaluation in classifier.evaluations.items()
    }
    arrays["meta"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)  # a run killed mid-write leaves no half cache behind


def load(path: Path, sha256: str) -> NewsClassifier | None:
    """The cached classifier for this data, or None (no cache, another data file, old format)."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as arrays:
        meta = json.loads(str(arrays["meta"]))
        if meta.get("version") != CACHE_VERSION or meta.get("sha256") != sha256:
            return None
        models = {
            label: LinearModel(
                classes=tuple(meta[f"{label}_classes"]),
                coef=arrays[f"{label}_coef"],
                intercept=arrays[f"{label}_intercept"],
            )
            for label in LABELS
        }
        vectors = arrays["vectors"]
    evaluations = {label: Evaluation(**e) for label, e in meta["evaluations"].items()}
    return NewsClassifier(
        models=models,
        vectors=vectors,
        evaluations=evaluations,
        data_sha256=sha256,
        from_cache=True,
    )


def trained_classifier(
    headlines: Sequence[Headline],
    encoder_factory: Any,
    *,
    cache_dir: Path,
    data_file: Path = HEADLINES_FILE,
) -> NewsClassifier:
    """Load the cached classifier for ``data_file``'s content, or embed, train and cache it.

    ``encoder_factory()`` is called only when the feed must be embedded."""
    sha256 = data_hash(data_file)
    path = cache_path(cache_dir, sha256)
    cached = load(path, sha256)
    if cached is not None and len(cached.vectors) == len(headlines):
        return cached
    vectors = encoder_factory().encode([h.headline for h in headlines])
    classifier = train(headlines, vectors, sha256)
    save(classifier, path)
    return classifier


def describe(classifier: NewsClassifier) -> str:
    """The held-out figures and classification reports, as printed after training."""
    lines = []
    for evaluation in classifier.evaluations.values():
        by_lang = ", ".join(f"{k} {v:.1%}" for k, v in evaluation.accuracy_by_lang.items())
        lines.append(
            f"{evaluation.label}: held-out accuracy {evaluation.accuracy:.1%} on "
            f"{evaluation.test_size} headlines ({by_lang}; majority-class baseline "
            f"{evaluation.majority_baseline:.1%})"
        )
        lines.append(evaluation.report.rstrip())
    return "\n".join(lines)
