"""Tool retrieval: offer a model only the k tools of a large library that fit the request.

A prompt cannot hold hundreds of tool schemas (a small model's context, and the time to read
them: ~100 tokens a tool at ~150 prompt tokens/s), so ``RetrievingToolSet`` wraps a library and,
per request, picks the tools whose text is nearest the latest user message in the space of
the packaged sentence-embedding model (``fncall.embed``). It is a view like the others in
``fncall.tools.wrappers``: iterating it, looking a tool up or executing a call sees the whole
library; only what is *offered* to the model narrows. ``offered_tools`` is the one place the
callers (``fncall.chat()``, ``Agent``, ``fncall serve --tools``) ask for that narrowing, so a
plain tool set passes through untouched.

What is always offered, on top of the k tools retrieved from the rest: the tools
``tool_choice`` forces (``required`` with a named function or an ``allowed_tools`` list), and
the tools the conversation has already called (a follow-up turn still sees the tool it used).
With an ``allowed`` list, only allowed tools are ranked: the model may call no other.

Tool vectors are cached on disk in ``$FNCALL_HOME/embeddings/`` (default
``~/.cache/fncall/embeddings``), one file per embedding model, keyed by a hash of the model's
name and the exact text embedded for the tool (its name, description and parameters), so a
tool whose schema changes is embedded again and an unchanged one never is. The file is
replaced atomically (written to a temporary file, then renamed) under a lock file, so
concurrent writers never leave it half-written and merge what each added (without ``fcntl``,
off POSIX, the last writer wins and the entries it did not know are embedded again later); a
damaged file is rebuilt, with a warning.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import threading
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from fncall.errors import UserError
from fncall.models import fncall_home
from fncall.tools.registry import AbstractToolSet, ToolSet, ToolsInput, as_toolset
from fncall.tools.wrappers import WrapperToolSet
from fncall.types import Message, Tool, ToolChoice
from fncall.warnings import FncallWarning

__all__ = [
    "DEFAULT_K",
    "EmbeddingCache",
    "RetrievingToolSet",
    "TextEncoder",
    "offered_tools",
    "retrieval_query",
    "tool_text",
]

DEFAULT_K = 5
Representation = Literal["name", "name_description", "full"]
REPRESENTATIONS: tuple[str, ...] = ("name", "name_description", "full")
# Parameters described per tool: the embedding model reads 256 tokens at most, and the first
# parameters of a schema are usually its main ones.
_PARAM_TEXT_LIMIT = 12


class TextEncoder(Protocol):
    """What retrieval needs of an embedding model (``fncall.embed.Embedder`` is one)."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length vectors, one row per text."""
        ...


# -- the text that stands for a tool ----------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def split_name(name: str) -> str:
    """``math.factorial`` -> ``math factorial``; ``getUserID`` -> ``get user id``."""
    spaced = _CAMEL.sub(" ", name)
    return " ".join(re.split(r"[^A-Za-z0-9]+", spaced)).strip().lower()


def check_representation(representation: object) -> Representation:
    if representation not in REPRESENTATIONS:
        raise UserError(
            f"unknown tool representation {representation!r}; "
            f"accepted: {', '.join(REPRESENTATIONS)}"
        )
    return representation  # type: ignore[return-value]


def tool_text(tool: Tool, representation: Representation = "full") -> str:
    """The text embedded for ``tool``.

    ``name``: its name split into words. ``name_description``: plus its description. ``full``
    (the default, chosen on the development suite: see README "Tool retrieval"): plus each
    parameter's name in words and its description.
    """
    check_representation(representation)
    parts = [split_name(tool.name)]
    if representation != "name" and tool.description:
        parts.append(tool.description.strip())
    if representation == "full":
        properties = tool.parameters.get("properties")
        if isinstance(properties, Mapping):
            for pname, schema in list(properties.items())[:_PARAM_TEXT_LIMIT]:
                described = schema.get("description") if isinstance(schema, Mapping) else None
                words = split_name(str(pname))
                if isinstance(described, str) and described.strip():
                    words = f"{words}: {described.strip()}"
                parts.append(words)
    return ". ".join(p for p in parts if p)


def retrieval_query(request: str | Sequence[Message]) -> str:
    """The text a request is ranked by: a string as is, else the latest user message."""
    if isinstance(request, str):
        query = request
    else:
        users = [m.content for m in request if m.role == "user" and (m.content or "").strip()]
        if not users:
            raise UserError(
                "tool retrieval ranks tools by the latest user message, and this conversation "
                "has none with text"
            )
        query = users[-1] or ""
    if not query.strip():
        raise UserError(f"tool retrieval needs a non-empty query, got {query!r}")
    return query


def called_tool_names(messages: Sequence[Message]) -> list[str]:
    """The tools the conversation's assistant turns have called, first call first."""
    return list(dict.fromkeys(c.name for m in messages for c in m.tool_calls))


# -- the vector cache ---------------------------------------------------------------------------


def embedding_cache_dir() -> Path:
    """``$FNCALL_HOME/embeddings`` (default ``~/.cache/fncall/embeddings``), as models live in
    ``$FNCALL_HOME/models``."""
    return fncall_home() / "embeddings"


def cache_key(model_name: str, text: str) -> str:
    return hashlib.sha256(f"{model_name}\n{text}".encode()).hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes, where the platform has ``fcntl`` (POSIX): writers
    then merge instead of the last one dropping entries the others added. Without it the
    atomic rename still keeps the file whole."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_CACHE_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


class EmbeddingCache:
    """Vectors by key in one ``.npz`` file per embedding model (``keys``, ``vectors``).

    ``None`` as ``folder`` keeps vectors in memory only."""

    def __init__(self, folder: str | Path | None, model_name: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name) or "model"
        self.path = None if folder is None else Path(folder) / f"tools-{safe}.npz"
        self._lock = threading.Lock()

    def load(self, *, warn: bool = True) -> dict[str, np.ndarray]:
        """What the file holds; a missing file is empty, a damaged one is empty with a warning."""
        if self.path is None or not self.path.exists():
            return {}
        try:
            # opened here: np.load leaves its own handle open when the file is not a zip
            with self.path.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
                if vectors.ndim != 2 or keys.ndim != 1 or len(keys) != len(vectors):
                    raise ValueError(f"keys {keys.shape} and vectors {vectors.shape} disagree")
                return {str(k): v for k, v in zip(keys.tolist(), vectors, strict=True)}
        except _CACHE_ERRORS as exc:
            if not warn:
                return {}
            warnings.warn(
                f"tool embedding cache {self.path} is unreadable ({type(exc).__name__}: {exc}); "
                "rebuilding it",
                FncallWarning,
                stacklevel=3,
            )
            return {}

    def add(self, new: Mapping[str, np.ndarray]) -> None:
        """Merge ``new`` into the file: re-read, merge, write a temporary file, rename."""
        if self.path is None or not new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, _file_lock(self.path.with_name(self.path.name + ".lock")):
            merged = self.load(warn=False)  # a damaged file was reported when read; replaced now
            merged.update(new)
            keys = np.array(list(merged), dtype="U64")
            vectors = np.stack([np.asarray(v, dtype=np.float32) for v in merged.values()])
            fd, temporary = tempfile.mkstemp(
                dir=self.path.parent, prefix=self.path.name + ".", suffix=".tmp"
            )
            try:
                with os.fdopen(fd, "wb") as handle:
                    np.savez(handle, keys=keys, vectors=vectors)
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise


# -- the wrapper ----------------------------------------------------------------------------------


def check_k(k: object, what: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UserError(f"{what} must be a positive integer (tools offered per request), got {k!r}")
    return k


class RetrievingToolSet(WrapperToolSet):
    """A library that offers the model the ``k`` tools nearest each request.

    ``embedder``: a ``TextEncoder`` (default: ``fncall.embed.default_embedder()``, loaded on the
    first request that needs it). ``cache_dir``: where tool vectors are kept (default
    ``$FNCALL_HOME/embeddings``; ``None`` keeps them in memory). ``representation``: the text
    embedded for a tool (``tool_text``).
    """

    def __init__(
        self,
        wrapped: ToolsInput,
        k: int = DEFAULT_K,
        *,
        embedder: TextEncoder | None = None,
        cache_dir: str | Path | Literal["default"] | None = "default",
        representation: Representation = "full",
    ) -> None:
        super().__init__(as_toolset(wrapped))
        self.k = check_k(k)
        if not self.wrapped:
            raise UserError("tool retrieval needs a library with at least one tool; got none")
        self.representation: Representation = check_representation(representation)
        self._embedder = embedder
        self._cache_dir = embedding_cache_dir() if cache_dir == "default" else cache_dir
        self._cache: EmbeddingCache | None = None
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def tool_map(self) -> dict[str, Tool]:
        return self.wrapped.tool_map()

    @property
    def embedder(self) -> TextEncoder:
        if self._embedder is None:
            from fncall.embed import default_embedder

            self._embedder = default_embedder()
        return self._embedder

    def tool_vectors(self, tools: Sequence[Tool]) -> np.ndarray:
        """One unit vector per tool, from memory, the disk cache, or the model (in that order)."""
        name = self.embedder.name
        texts = [tool_text(t, self.representation) for t in tools]
        keys = [cache_key(name, text) for text in texts]
        with self._lock:
            if self._cache is None:
                self._cache = EmbeddingCache(self._cache_dir, name)
                self._vectors.update(self._cache.load())
            missing = list(dict.fromkeys(k for k in keys if k not in self._vectors))
            if missing:
                by_key = dict(zip(keys, texts, strict=True))
                encoded = np.asarray(self.embedder.encode([by_key[k] for k in missing]))
                fresh = dict(zip(missing, encoded.astype(np.float32), strict=True))
                self._vectors.update(fresh)
                self._cache.add(fresh)
            return np.stack([self._vectors[k] for k in keys])

    def warm(self) -> None:
        """Embed every tool now (a server does it at start, not on its first request)."""
        self.tool_vectors(self.tools)

    def rank(
        self, query: str, candidates: Iterable[Tool] | None = None
    ) -> list[tuple[Tool, float]]:
        """``candidates`` (default: every tool) by cosine similarity to ``query``, best first."""
        tools = list(self.wrapped if candidates is None else candidates)
        if not tools:
            return []
        query = retrieval_query(query)
        matrix = self.tool_vectors(tools)
        query_vector = np.asarray(self.embedder.encode([query]))[0]
        scores = matrix @ query_vector
        order = np.argsort(-scores, kind="stable")
        return [(tools[i], float(scores[i])) for i in order]

    def select(
        self,
        request: str | Sequence[Message],
        k: int | None = None,
        *,
        tool_choice: ToolChoice | None = None,
    ) -> ToolSet:
        """The tools to offer for ``request`` (a query, or the conversation so far): the ones
        ``tool_choice`` forces, then those the conversation called, then the ``k`` (default
        ``self.k``) best-ranked of the others, so a follow-up about something new still gets
        its own ``k``. A new ``ToolSet`` holding the library's own ``Tool`` objects, in that
        order."""
        k = self.k if k is None else check_k(k)
        library = self.wrapped.tool_map()
        choice = tool_choice or ToolChoice()
        if choice.allowed is not None:
            unknown = [n for n in choice.allowed if n not in library]
            if unknown:
                raise UserError(f"tool_choice names tool(s) {unknown} that are not in the library")
            candidates = {n: library[n] for n in choice.allowed}
        else:
            candidates = library
        pinned = list(choice.allowed) if choice.mode == "required" and choice.allowed else []
        if not isinstance(request, str):
            pinned += [n for n in called_tool_names(request) if n in candidates]
        chosen = {n: candidates[n] for n in dict.fromkeys(pinned)}
        rest = [t for n, t in candidates.items() if n not in chosen]
        if len(rest) <= k:
            chosen.update((t.name, t) for t in rest)
        else:
            chosen.update((t.name, t) for t, _ in self.rank(retrieval_query(request), rest)[:k])
        return ToolSet(chosen.values())

    def __repr__(self) -> str:
        return f"RetrievingToolSet({len(self.wrapped)} tools, k={self.k})"


def offered_tools(
    tools: AbstractToolSet,
    messages: Sequence[Message],
    tool_choice: ToolChoice | None = None,
) -> list[Tool]:
    """What a request offers the model: every tool of a plain set; for a ``RetrievingToolSet``
    larger than its ``k``, the selection for ``messages`` (``RetrievingToolSet.select``)."""
    if isinstance(tools, RetrievingToolSet) and len(tools) > tools.k:
        return tools.select(messages, tool_choice=tool_choice).tools
    return tools.tools
