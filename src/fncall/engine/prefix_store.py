"""Saved KV states on disk, so that a new process finds the prefixes an earlier one computed.

The in-memory LRU (``fncall.engine.prefix_cache``) lives as long as its engine, so every new
process evaluates its tool prefix and the judge's fixed examples again: on two cores and the
default model that is ~7 s each before the first question of a ``fncall chat`` one-shot or a
demo run can be answered. A ``PrefixStore`` keeps the states an engine saved as files, and the
LRU consults it when it holds no longer prefix itself.

- **What is written**: the states in the engine's LRU, and its live state, when the engine
  closes (``close()``, ``fncall serve``'s shutdown, or normal interpreter exit); each state
  once. A state whose tokens extend
  a stored one replaces it; one that a stored state extends is not written.
- **Where**: ``$FNCALL_HOME/prefixes/<identity>/``, one folder per (model file, llama.cpp
  library, CPU, context settings) as the engine names it: a state is only ever loaded by the
  build, model and CPU that computed it, so its numbers are those that engine computes.
- **Bounded**: by the total size of every folder under the store's root (``DEFAULT_STORE_MB``),
  so the folders a rebuilt library or a re-assembled model leaves behind age out too; the least
  recently used files go first, and a temporary file a killed writer left goes after an hour.
- **Safe to share and to lose**: a file is written under a temporary name and renamed, so a
  reader never sees half of one; each carries the sha256 of its state, and a file that does not
  check out (truncated, edited, another format) is deleted and ignored, never loaded. Several
  processes may use one folder; each reads the folder's index when it first needs it. The
  digest guards against damage, not against someone who can write the folder: it is trusted as
  the model files beside it are (the folders are created with the user's umask).

The file: ``MAGIC``, the token count (uint32), the state's size (uint64), the state's sha256
(32 bytes), the tokens (int32 each), the state's bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fncall.engine.prefix_cache import cache_bytes, common_prefix
from fncall.errors import UserError
from fncall.models import fncall_home

MAGIC = b"FNCALL-KV1\n"
_HEADER = struct.Struct("<IQ32s")
SUFFIX = ".kv"
# 256 MiB: ~9,000 tokens of the default model's states (28 KiB a token), e.g. its tool prefixes
# for a dozen libraries and the judge's examples.
DEFAULT_STORE_MB = 256
STORE_ENV = "FNCALL_PREFIX_STORE_MB"
STALE_TEMPORARY_S = 3600


@dataclass(frozen=True, eq=False)  # compared by identity: the tokens are an array
class StoredState:
    tokens: np.ndarray
    path: Path


def store_bytes(megabytes: float | None) -> int:
    """The store's bound in bytes: ``megabytes``, else ``$FNCALL_PREFIX_STORE_MB``, else the
    default; 0 turns the store off."""
    off = "no prefixes on disk"
    if megabytes is not None:
        return cache_bytes(megabytes, name="prefix_store_mb", off=off)
    text = os.environ.get(STORE_ENV, "").strip()
    if not text:
        return DEFAULT_STORE_MB * 1024 * 1024
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0:
        raise UserError(f"${STORE_ENV} must be a number of MiB >= 0 (0 = {off}), got {text!r}")
    return cache_bytes(value)


def turn_off_for_this_process() -> None:
    """No store for the engines this process, and the processes it starts, create from now on
    (``$FNCALL_PREFIX_STORE_MB=0``): for timings that must start from scratch, as the
    benchmarks' do, where an earlier run's states would serve the very prompts being timed."""
    os.environ[STORE_ENV] = "0"


def default_store_dir() -> Path:
    """``$FNCALL_HOME/prefixes`` (default ``~/.cache/fncall/prefixes``)."""
    return fncall_home() / "prefixes"


def identity(*parts: object) -> str:
    """A folder name for the states one engine configuration computes."""
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:24]


class PrefixStore:
    """States on disk in one folder, bounded by ``max_bytes``; thread-safe within a process."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int,
        *,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        """``root``: the folder whose files (``directory``'s and its siblings') the bound
        covers; ``directory`` itself by default."""
        self.directory = Path(directory)
        self.root = Path(root) if root is not None else self.directory
        self.max_bytes = max_bytes
        self._index: list[StoredState] | None = None
        self._lock = threading.Lock()
        self.hits = 0

    # -- reading -------------------------------------------------------------------------------

    def _entries(self) -> list[StoredState]:
        if self._index is None:
            self._index = []
            with contextlib.suppress(OSError):
                for path in sorted(self.directory.glob(f"*{SUFFIX}")):
                    tokens = _read_tokens(path)
                    if tokens is None:
                        _remove(path)
                    else:
                        self._index.append(StoredState(tokens, path))
        return self._index

    def best(self, tokens: Sequence[int] | np.ndarray) -> tuple[StoredState | None, int]:
        """The stored state sharing the longest prefix with ``tokens``, and that length."""
        best, length = None, 0
        with self._lock:
            for entry in self._entries():
                shared = common_prefix(entry.tokens, tokens)
                if shared > length:
                    best, length = entry, shared
        return best, length

    def read(self, entry: StoredState) -> bytes | None:
        """The state's bytes, or None (and the file gone) if it does not check out."""
        try:
            data = entry.path.read_bytes()
        except OSError:
            data = b""
        state = _parse(data, entry.tokens)
        if state is None:
            _remove(entry.path)
            with self._lock:
                if self._index is not None and entry in self._index:
                    self._index.remove(entry)
            return None
        with contextlib.suppress(OSError):
            os.utime(entry.path)  # recently used: evicted last
        self.hits += 1
        return state

    # -- writing -------------------------------------------------------------------------------

    def write(self, tokens: Sequence[int] | np.ndarray, state: bytes) -> bool:
        """Store ``state`` (holding ``tokens``); False if it is too big, already covered by a
        stored state that extends it, or the folder cannot be written."""
        held = np.asarray(tokens, dtype=np.int64)
        with self._lock:
            entries = self._entries()
            if not len(held) or any(
                len(e.tokens) >= len(held) and common_prefix(e.tokens, held) == len(held)
                for e in entries
            ):
                return False
            data = _encode(held, state)
            if len(data) > self.max_bytes:
                return False
            path = self.directory / f"{hashlib.sha256(held.tobytes()).hexdigest()[:32]}{SUFFIX}"
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                temporary.write_bytes(data)
                os.replace(temporary, path)
            except OSError:
                with contextlib.suppress(OSError):
                    temporary.unlink()
                return False
            for entry in [e for e in entries if common_prefix(e.tokens, held) == len(e.tokens)]:
                _remove(entry.path)  # served by the new state
                entries.remove(entry)
            entries.append(StoredState(held, path))
            self._evict(keep=path)
        return True

    def _evict(self, keep: Path) -> None:
        """Delete the least recently used files until the root is within the bound."""
        files = []
        now = time.time()
        for path in self._files("*"):
            with contextlib.suppress(OSError):
                info = path.stat()
                if path.name.endswith(SUFFIX):
                    files.append((info.st_mtime_ns, info.st_size, path))
                elif path.name.startswith(".") and now - info.st_mtime > STALE_TEMPORARY_S:
                    _remove(path)  # a writer was killed before its rename
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            if path != keep:
                _remove(path)
                total -= size
        if self._index is not None:
            self._index = [e for e in self._index if e.path.exists()]

    def _files(self, pattern: str) -> list[Path]:
        """The files matching ``pattern`` in the root and in its folders."""
        with contextlib.suppress(OSError):
            return [*self.root.glob(pattern), *self.root.glob(f"*/{pattern}")]
        return []

    @property
    def nbytes(self) -> int:
        """The bytes the store's files take under its root."""
        total = 0
        for path in self._files(f"*{SUFFIX}"):
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total


def _encode(tokens: np.ndarray, state: bytes) -> bytes:
    header = _HEADER.pack(len(tokens), len(state), hashlib.sha256(state).digest())
    return b"".join((MAGIC, header, tokens.astype("<i4").tobytes(), state))


def _read_tokens(path: Path) -> np.ndarray | None:
    """The tokens a file holds, from its header alone; None if it is not a store file."""
    try:
        with path.open("rb") as file:
            head = file.read(len(MAGIC) + _HEADER.size)
            if len(head) != len(MAGIC) + _HEADER.size or not head.startswith(MAGIC):
                return None
            count, size, _ = _HEADER.unpack(head[len(MAGIC) :])
            raw = file.read(4 * count)
            if len(raw) != 4 * count or path.stat().st_size != len(head) + 4 * count + size:
                return None
    except OSError:
        return None
    return np.frombuffer(raw, dtype="<i4").astype(np.int64)


def _parse(data: bytes, tokens: np.ndarray) -> bytes | None:
    """The state in a file's bytes if the file is whole and holds ``tokens``; else None."""
    start = len(MAGIC) + _HEADER.size
    if len(data) < start or not data.startswith(MAGIC):
        return None
    count, size, digest = _HEADER.unpack(data[len(MAGIC) : start])
    body = start + 4 * count
    if count != len(tokens) or len(data) != body + size:
        return None
    if not np.array_equal(np.frombuffer(data[start:body], dtype="<i4"), tokens):
        return None
    state = data[body:]
    return state if hashlib.sha256(state).digest() == digest else None


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
