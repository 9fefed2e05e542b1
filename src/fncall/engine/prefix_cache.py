"""Saved KV states keyed by the tokens they hold: a bounded LRU shared by the local engines.

An engine's context holds one sequence of evaluated tokens (the *live* state). A new prompt that
shares a prefix with it only evaluates the rest, but a prompt from another conversation or tool
set replaces most of it, and the next prompt of the first conversation would evaluate its
whole tool prefix again. So before a prompt replaces at least ``SAVE_MIN_TOKENS`` of the live
tokens, the engine saves the live state here, and a prompt whose longest shared prefix is with
a saved state rather than the live one has that state loaded first.

The cache knows nothing of the backend: a state is an opaque object with a size in bytes
(llama.cpp's serialised sequence state; a copy of a transformers ``DynamicCache``). It is
bounded by the total size; the least recently used states go first. Saving a state whose
tokens extend a saved one replaces it (the longer one serves every prompt the shorter did).

With a ``PrefixStore`` (``fncall.engine.prefix_store``) and a ``StateCodec`` from the engine,
the cache also finds states an earlier process left on disk, and ``persist`` writes its own
there (the engine calls it when it closes).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from fncall.errors import UserError

if TYPE_CHECKING:
    from fncall.engine.prefix_store import PrefixStore

# A state holding fewer tokens than this is not worth a copy (prompt evaluation runs at
# ~100 tokens/s on two cores, a state copy at GB/s).
SAVE_MIN_TOKENS = 64
# A saved state is loaded only if it covers this many more tokens than the live one: loading
# costs a copy of the whole state, evaluating a handful of tokens costs less.
LOAD_MIN_GAIN = 16
# The default bound: 128 MiB holds ~4,500 tokens of the default model (Qwen2.5 1.5B, 28 KiB of
# f16 K and V per token), ~8 tool prefixes of the size the demo's tools render to; or ~10,000
# tokens (~20 such prefixes) of the 0.5B (12 KiB per token). Raise it for a server whose
# clients bring many tool sets (``fncall serve --prefix-cache-mb``).
DEFAULT_CACHE_MB = 128


def common_prefix(a: np.ndarray, b: Sequence[int] | np.ndarray) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    mismatch = np.flatnonzero(a[:n] != np.asarray(b[:n], dtype=a.dtype))
    return int(mismatch[0]) if mismatch.size else n


@dataclass(frozen=True)
class SavedState:
    tokens: np.ndarray  # the token ids the state holds, in order
    state: Any  # the backend's saved state
    nbytes: int
    stored: bool = False  # already in the PrefixStore (read from it, or written)


@dataclass(frozen=True)
class StateCodec:
    """How an engine's saved states become bytes on disk and back: ``decode`` returns the
    state and its size in bytes."""

    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], tuple[Any, int]]


@dataclass(frozen=True)
class Reuse:
    """What a new prompt does with the live context and the saved states (``PrefixCache.plan``).

    The engine saves the live state first if ``save_live``, then loads ``load`` if it is given
    (it shares ``shared`` tokens with the prompt); else it keeps the ``live`` tokens it shares.
    """

    live: int
    save_live: bool
    load: SavedState | None
    shared: int


class PrefixCache:
    """A bounded LRU of saved states; thread-safe."""

    def __init__(
        self,
        max_bytes: int,
        *,
        store: PrefixStore | None = None,
        codec: StateCodec | None = None,
    ) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise UserError(
                f"the prefix cache size must be an integer >= 0 bytes, got {max_bytes!r}"
            )
        self.max_bytes = max_bytes
        self.store = store if codec is not None and max_bytes else None
        self.codec = codec
        self._entries: OrderedDict[int, SavedState] = OrderedDict()
        self._next_id = 0
        self._lock = threading.Lock()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return sum(entry.nbytes for entry in self._entries.values())

    def plan(self, live: np.ndarray, tokens: Sequence[int]) -> Reuse:
        """The one rule both engines follow for a prompt ``tokens``, given the ``live`` tokens
        their context holds: save the live state when the prompt replaces at least
        ``SAVE_MIN_TOKENS`` of it, load a saved state that shares ``LOAD_MIN_GAIN`` more."""
        common = common_prefix(live, tokens)
        if not self.max_bytes:
            return Reuse(live=common, save_live=False, load=None, shared=0)
        saved, shared = self.best(tokens, at_least=common + LOAD_MIN_GAIN)
        gain = saved is not None and shared >= common + LOAD_MIN_GAIN
        return Reuse(
            live=common,
            save_live=len(live) - common >= SAVE_MIN_TOKENS,
            load=saved if gain else None,
            shared=shared,
        )

    def best(self, tokens: Sequence[int], *, at_least: int = 1) -> tuple[SavedState | None, int]:
        """The saved state sharing the longest prefix with ``tokens``, and that length; a
        state on disk that shares more, and at least ``at_least`` tokens, is read into the
        cache first."""
        best, length, best_key = None, 0, -1
        with self._lock:
            for key, entry in self._entries.items():
                shared = common_prefix(entry.tokens, tokens)
                if shared > length:
                    best, length, best_key = entry, shared, key
            if best is not None:
                self._entries.move_to_end(best_key)
        if self.store is not None and self.codec is not None:
            found, shared = self.store.best(tokens)
            if found is not None and shared > length and shared >= at_least:
                data = self.store.read(found)
                if data is not None:
                    state, nbytes = self.codec.decode(data)
                    saved = SavedState(found.tokens, state, nbytes, stored=True)
                    self._add(saved)
                    return saved, shared
        return best, length

    def put(self, tokens: Sequence[int], state: Any, nbytes: int) -> bool:
        """Save ``state`` (holding ``tokens``); False if it alone exceeds the bound."""
        return self._add(SavedState(np.array(tokens, dtype=np.int64), state, nbytes))

    def persist(self) -> int:
        """Write the saved states not yet on disk to the store; how many were written."""
        if self.store is None or self.codec is None:
            return 0
        with self._lock:
            pending = [(key, entry) for key, entry in self._entries.items() if not entry.stored]
        written = 0
        for key, entry in pending:
            if self.store.write(entry.tokens, self.codec.encode(entry.state)):
                written += 1
            with self._lock:
                if key in self._entries:
                    self._entries[key] = replace(entry, stored=True)
        return written

    def _add(self, saved: SavedState) -> bool:
        nbytes, held = saved.nbytes, saved.tokens
        if nbytes > self.max_bytes:
            return False
        with self._lock:
            # A saved state whose tokens are a prefix of these is served by this one.
            for key in [
                key
                for key, entry in self._entries.items()
                if len(entry.tokens) <= len(held)
                and common_prefix(entry.tokens, held) == len(entry.tokens)
            ]:
                del self._entries[key]
            self._entries[self._next_id] = saved
            self._next_id += 1
            total = sum(entry.nbytes for entry in self._entries.values())
            while total > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                total -= dropped.nbytes
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def cache_bytes(
    megabytes: float, *, name: str = "prefix_cache_mb", off: str = "no saved prefixes"
) -> int:
    """A size in MiB (``prefix_cache_mb``, or the setting ``name``) as bytes; 0 turns saving
    off (``off`` says what that means in the error)."""
    if (
        isinstance(megabytes, bool)
        or not isinstance(megabytes, int | float)
        or not megabytes >= 0  # NaN too
    ):
        raise UserError(f"{name} must be a number of MiB >= 0 (0 = {off}), got {megabytes!r}")
    return int(megabytes * 1024 * 1024)
