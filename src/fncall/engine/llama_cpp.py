"""The llama.cpp engine: a GGUF model on the CPU through ``llama-cpp-python``'s low-level API.

The decode loop is our own (``fncall.engine.decoding``) rather than ``Llama.generate``, so that
a constraint masks the raw logits once per token, tokens the grammar forces are evaluated in one
batch without sampling, and the KV cache of the longest shared prompt prefix is kept between
calls: with an identical system prompt and tool definitions only the new suffix is evaluated.
Before a prompt replaces most of that cache, its state is saved in a bounded LRU
(``fncall.engine.prefix_cache``), so alternating tool sets, conversations and server clients
each find their prefix again; when the engine closes, those states go to disk
(``fncall.engine.prefix_store``), so the next process finds them too.

One engine holds one llama.cpp context (one KV cache), so calls are serialised by a lock.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import platform
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fncall.engine.base import Generation
from fncall.engine.decoding import (
    DecodeRequest,
    TextStream,
    check_continuations,
    check_options,
    check_sampling,
    make_generation,
    run_decode_loop,
    score_continuations,
)
from fncall.engine.prefix_cache import (
    DEFAULT_CACHE_MB,
    SAVE_MIN_TOKENS,
    PrefixCache,
    SavedState,
    StateCodec,
    cache_bytes,
)
from fncall.engine.prefix_store import PrefixStore, default_store_dir, identity, store_bytes
from fncall.engine.speculative import DEFAULT_DRAFT_TOKENS
from fncall.engine.threads import default_threads
from fncall.errors import UserError
from fncall.types import valid_unicode

if TYPE_CHECKING:
    from fncall.constrain.base import Constraint


def _import_llama_cpp() -> Any:
    """Import llama_cpp, or say how to install it.

    OpenMP's wait policy is left to the runtime (GNU OpenMP spins briefly at each barrier, then
    sleeps). Measured on two cores with the default model: alone, a decoded token takes 46 ms
    that way and 83 ms with ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep at every barrier, and a
    token crosses hundreds); with a second model process competing for the same cores, 150 ms
    against 87 ms. So the default suits a model that has its cores, and ``PASSIVE`` (set before
    the process starts) a machine shared with other work.
    """
    try:
        import llama_cpp
    except ImportError:
        raise UserError(
            "the llama.cpp engine needs llama-cpp-python: pip install 'fncall[llama]' "
            "(or pip install llama-cpp-python==0.3.36)"
        ) from None
    return llama_cpp


class LlamaCppEngine:
    """A GGUF model loaded once with llama.cpp; implements ``fncall.engine.base.Engine``.

    ``prefix_cache_mb`` bounds the saved KV states (``fncall.engine.prefix_cache``; 0: only the
    live context's prefix is reused). ``prefix_store_mb`` bounds the states kept on disk for
    later processes (``fncall.engine.prefix_store``; ``None``: ``$FNCALL_PREFIX_STORE_MB`` or
    256; 0: none), in ``prefix_store_dir`` (default ``$FNCALL_HOME/prefixes``); they are
    written by ``close`` and ``persist_prefixes``, when the engine is dropped, and when the
    interpreter exits. ``draft_tokens``: tokens guessed from the context per greedy step and
    checked in the same batch (``fncall.engine.speculative``; 0: none).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        seed: int = 0,
        verbose: bool = False,
        n_batch: int = 512,
        name: str | None = None,
        prefix_cache_mb: float = DEFAULT_CACHE_MB,
        draft_tokens: int = DEFAULT_DRAFT_TOKENS,
        prefix_store_mb: float | None = None,
        prefix_store_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise UserError(f"GGUF model file {str(path)!r} does not exist")
        if not isinstance(n_ctx, int) or n_ctx < 16:
            raise UserError(f"n_ctx must be an integer >= 16, got {n_ctx!r}")
        if not isinstance(draft_tokens, int) or isinstance(draft_tokens, bool) or draft_tokens < 0:
            raise UserError(f"draft_tokens must be an integer >= 0, got {draft_tokens!r}")
        self.draft_tokens = min(draft_tokens, n_batch - 1)
        cache_size, store_size = cache_bytes(prefix_cache_mb), store_bytes(prefix_store_mb)
        llama_cpp = _import_llama_cpp()
        self._lib = llama_cpp
        threads = n_threads or default_threads()
        self._llama = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_threads=threads,
            n_threads_batch=n_threads_batch or threads,
            seed=seed,
            verbose=verbose,
            logits_all=False,
        )
        self.name = name or path.stem
        self.model_path = path
        self.n_ctx = self._llama.n_ctx()
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama.model)
        self._n_vocab = int(self._llama.n_vocab())
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._pieces: list[bytes] | None = None
        self.drafted = self.drafted_dropped = 0  # guessed tokens evaluated, and dropped again
        self.eos_token_ids: frozenset[int] = frozenset(
            t for t in range(self._n_vocab) if llama_cpp.llama_vocab_is_eog(self._vocab, t)
        )
        # Whether the tokenizer adds BOS itself; if a rendered template already starts with the
        # BOS text, the duplicate is dropped in ``tokenize``.
        self._bos = int(self._llama.token_bos())
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        store = None
        if store_size and cache_size:
            folder = identity(
                _file_identity(path), _library_identity(llama_cpp), _cpu_identity(), n_ctx, n_batch
            )
            root = Path(prefix_store_dir or default_store_dir()).expanduser()
            store = PrefixStore(root / folder, store_size, root=root)
        self.prefix_cache = PrefixCache(cache_size, store=store, codec=_CODEC)
        self._closed = False
        self._unwritten = False  # whether the context changed since the store was written
        self._at_exit = _persist_at_exit(weakref.ref(self))
        atexit.register(self._at_exit)

    # -- tokens ------------------------------------------------------------------------------

    @property
    def chat_template(self) -> str | None:
        return self._llama.metadata.get("tokenizer.chat_template") or None

    @property
    def metadata(self) -> dict[str, str]:
        """The GGUF metadata (key -> value as text)."""
        return dict(self._llama.metadata)

    def _piece(self, token: int, buffer: Any) -> bytes:
        n = self._lib.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, True)
        if n < 0:  # the piece is longer than the buffer: -n bytes are needed
            buffer = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self._vocab, token, buffer, -n, 0, True)
        return bytes(buffer.raw[:n])

    def vocabulary(self) -> list[bytes]:
        """The bytes of every token id, special tokens rendered as their text (``<|im_end|>``)."""
        if self._pieces is None:
            buffer = ctypes.create_string_buffer(256)
            self._pieces = [self._piece(t, buffer) for t in range(self._n_vocab)]
        return self._pieces

    def tokenize(self, text: str) -> list[int]:
        """Prompt text to token ids; special-token text (``<|im_start|>``) becomes that token."""
        # A lone surrogate (a request's "\ud800") cannot be UTF-8: read as U+FFFD, not a 500.
        data = valid_unicode(text).encode("utf-8")
        tokens = self._llama.tokenize(data, add_bos=True, special=True)
        if self._add_bos and len(tokens) > 1 and tokens[0] == tokens[1] == self._bos:
            tokens = tokens[1:]
        return list(tokens)

    def detokenize(self, tokens: Sequence[int]) -> str:
        pieces = self.vocabulary()
        return b"".join(pieces[t] for t in tokens).decode("utf-8", errors="replace")

    def _prompt_tokens(self, prompt: str) -> list[int]:
        tokens = self.tokenize(prompt)
        if not tokens:
            raise UserError("the prompt is empty: it tokenizes to no tokens")
        if len(tokens) >= self.n_ctx:
            raise UserError(
                f"the prompt has {len(tokens)} tokens but the context holds {self.n_ctx}; "
                "shorten the prompt or load the engine with a larger n_ctx"
            )
        return tokens

    # -- generation --------------------------------------------------------------------------

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the KV cache of the longest prefix ``tokens`` shares with the live context or a
        saved state; returns how many tokens it covers."""
        llama = self._llama
        live = llama.input_ids[: llama.n_tokens]
        self._unwritten = True  # the context changes: there is something for the store again
        if llama._is_recurrent or llama._is_hybrid:
            common = 0  # their state cannot be truncated to a prefix
        else:
            plan = self.prefix_cache.plan(live, tokens)
            common = plan.live
            if plan.save_live:
                self._save_live(live)
            if plan.load is not None:
                common = plan.shared if self._load(plan.load) else 0
        if common == len(tokens):
            common -= 1  # the last prompt token is evaluated again to get fresh logits
        if common == 0:
            llama.reset()
        llama.n_tokens = common  # Llama.eval drops the KV cache from n_tokens on
        return common

    def _save_live(self, live: np.ndarray) -> None:
        state = self._live_state()
        if state is not None:
            self.prefix_cache.put(live.tolist(), state, len(state))

    def _live_state(self) -> Any:
        """The live context's serialised state (a ctypes byte array), or None."""
        lib, ctx = self._lib, self._llama.ctx
        size = int(lib.llama_state_seq_get_size(ctx, 0))
        buffer = (ctypes.c_uint8 * size)()
        return buffer if lib.llama_state_seq_get_data(ctx, buffer, size, 0) == size else None

    def _load(self, saved: SavedState) -> bool:
        """Replace the live context with a saved state; False (and an empty context) if
        llama.cpp refuses it."""
        llama, lib = self._llama, self._lib
        lib.llama_memory_clear(lib.llama_get_memory(llama.ctx), True)
        if lib.llama_state_seq_set_data(llama.ctx, saved.state, saved.nbytes, 0) != saved.nbytes:
            lib.llama_memory_clear(lib.llama_get_memory(llama.ctx), True)
            llama.n_tokens = 0
            return False
        held = len(saved.tokens)
        llama.input_ids[:held] = saved.tokens
        llama.n_tokens = held
        self.prefix_cache.hits += 1
        return True

    def _logits(self) -> np.ndarray:
        pointer = self._lib.llama_get_logits_ith(self._llama.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))

    def verify(self, batch: list[int], draft: list[int]) -> Callable[[int], np.ndarray]:
        """Evaluate ``batch`` then ``draft``, keeping the logits at every position from
        ``batch``'s last token on (``fncall.engine.speculative.DraftVerifier``)."""
        llama = self._llama
        if len(batch) > 1:
            llama.eval(batch[:-1])
        tail = [*batch[-1:], *draft]
        start = llama.n_tokens
        llama._ctx.kv_cache_seq_rm(-1, start, -1)
        llama._batch.set_batch(batch=tail, n_past=start, logits_all=True)
        llama._ctx.decode(llama._batch)
        llama.input_ids[start : start + len(tail)] = tail
        llama.n_tokens = start + len(tail)
        self.drafted += len(draft)
        ctx, n_vocab, get = llama.ctx, self._n_vocab, self._lib.llama_get_logits_ith
        return lambda i: np.ctypeslib.as_array(get(ctx, i), shape=(n_vocab,))

    def rewind(self, count: int) -> None:
        """Forget the last ``count`` evaluated tokens (the next evaluation drops their KV)."""
        self._llama.n_tokens -= count
        self.drafted_dropped += count

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        seed: int | None = None,
        constraint: Constraint | None = None,
        on_text: Callable[[str], None] | None = None,
        top_p: float = 1.0,
        min_p: float = 0.0,
        logit_bias: Mapping[int, float] | None = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        top_logprobs: int | None = None,
    ) -> Generation:
        """Generate a completion of ``prompt`` (already rendered by a chat format).

        ``temperature`` 0 is greedy; ``top_p`` < 1 samples from the likeliest tokens whose
        probabilities reach it, ``min_p`` > 0 from the tokens at least ``min_p`` times as likely
        as the likeliest one (neither has an effect when greedy). ``seed`` makes one call's
        sampling reproducible; without it the engine's own generator (seeded at construction)
        is used.
        ``on_text`` receives the text as it is produced, in whole characters, stop strings
        excluded.

        ``logit_bias`` (token id -> -100..100, added to its logit), ``presence_penalty`` and
        ``frequency_penalty`` (-2..2) act as in OpenAI's API, before the grammar's mask;
        ``top_logprobs`` (0..20) fills ``Generation.logprobs`` with each token's
        log-probability and that many alternatives (``fncall.engine.base.TokenLogprob``).
        """
        stops = check_options(max_tokens, temperature, stop, top_p=top_p, min_p=min_p)
        pieces = self.vocabulary()
        sampling = check_sampling(
            vocab_size=len(pieces),
            logit_bias=logit_bias,
            presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty,
            top_logprobs=top_logprobs,
        )
        with self._lock:
            started = time.perf_counter()
            tokens = self._prompt_tokens(prompt)
            matcher = (
                constraint.matcher(pieces, sorted(self.eos_token_ids))
                if constraint is not None
                else None
            )
            cached = self._reuse_prefix(tokens)
            request = DecodeRequest(
                pending=tokens[cached:],
                max_tokens=min(max_tokens, self.n_ctx - len(tokens)),
                temperature=float(temperature),
                top_p=float(top_p),
                min_p=float(min_p),
                rng=np.random.default_rng(seed) if seed is not None else self._rng,
                stream=TextStream(stops, on_text),
                pieces=pieces,
                eog=self.eos_token_ids,
                matcher=matcher,
                context=tokens,
                draft_tokens=self.draft_tokens,
                **sampling,
            )
            generated, finish = run_decode_loop(
                request, self._llama.eval, self._logits, verifier=self
            )
            return make_generation(
                request,
                generated=generated,
                finish_reason=finish,
                prompt_tokens=len(tokens),
                cached_tokens=cached,
                started=started,
            )

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """The log-probability of each text in ``continuations`` following ``prompt`` (the sum
        over its tokens). The prompt's KV cache is shared: each continuation costs its own
        tokens only."""
        with self._lock:
            tokens = self._prompt_tokens(prompt)
            pieces = [
                list(
                    self._llama.tokenize(
                        valid_unicode(text).encode("utf-8"), add_bos=False, special=True
                    )
                )
                for text in check_continuations(continuations)
            ]
            return score_continuations(
                tokens, pieces, self._reuse_prefix, self._llama.eval, self._logits
            )

    def persist_prefixes(self, timeout: float | None = None) -> int:
        """Write the saved prefixes, and the live context's state, to the prefix store (what
        ``close`` does first); how many states were written. ``timeout``: seconds to wait for
        a request another thread is running (then nothing is written); ``None``: as long as
        it takes."""
        if not self._lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            return 0
        try:
            return self._persist()
        finally:
            self._lock.release()

    def _persist(self) -> int:
        store = self.prefix_cache.store
        if self._closed or store is None or not self._unwritten:
            return 0
        self._unwritten = False
        written = self.prefix_cache.persist()
        llama = self._llama
        live = llama.input_ids[: llama.n_tokens]
        if len(live) >= SAVE_MIN_TOKENS and not (llama._is_recurrent or llama._is_hybrid):
            state = self._live_state()
            written += state is not None and store.write(live.tolist(), bytes(state))
        return written

    def __del__(self) -> None:
        """An engine dropped before the interpreter exits (the ``fncall chat`` command's, once
        its loop ends) writes its prefixes as it goes, if no request holds it."""
        # Plain try/except: a finaliser never raises, and at interpreter shutdown the modules
        # it would use (contextlib, atexit) may already be gone.
        try:
            if self._lock.acquire(blocking=False):
                try:
                    self._persist()
                finally:
                    self._lock.release()
            atexit.unregister(self._at_exit)
        except Exception:
            pass

    def close(self) -> None:
        """Write the saved prefixes to the prefix store, then free the model and context now
        rather than at garbage collection (after a request another thread is running has
        finished: freeing them under it would crash)."""
        with self._lock:
            self._persist()
            self._closed = True
            self._llama.close()
        atexit.unregister(self._at_exit)

    def __repr__(self) -> str:
        return f"LlamaCppEngine({str(self.model_path)!r}, n_ctx={self.n_ctx})"


def _encode_state(state: Any) -> bytes:
    return bytes(state)


def _decode_state(data: bytes) -> tuple[Any, int]:
    return (ctypes.c_uint8 * len(data)).from_buffer_copy(data), len(data)


_CODEC = StateCodec(encode=_encode_state, decode=_decode_state)


def _persist_at_exit(engine: weakref.ref[LlamaCppEngine]) -> Callable[[], None]:
    """An exit hook that writes an engine's prefixes if it is still open and idle within a
    second (a request another thread is still running keeps its lock)."""

    def hook() -> None:
        live = engine()
        if live is not None:
            with contextlib.suppress(Exception):  # an exit never fails over a cache
                live.persist_prefixes(timeout=1.0)

    return hook


def _file_identity(path: Path) -> tuple[str, int, int]:
    info = path.stat()
    return str(path.resolve()), info.st_size, info.st_mtime_ns


def _cpu_identity() -> str:
    """The CPU's model and instruction sets: one library picks other kernels on another CPU
    (a home folder shared between machines), and so computes other numbers."""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
        wanted = [line for line in lines if line.startswith(("model name", "flags"))][:2]
        if wanted:
            return "\n".join(wanted)
    return f"{platform.machine()} {platform.processor()}"


def _library_identity(llama_cpp: Any) -> list[tuple[str, int, int]]:
    """The llama.cpp libraries in use, by path, size and time: another build (portable or
    native, rebuilt) computes other numbers, so it gets other stored states."""
    library = Path(getattr(getattr(llama_cpp.llama_cpp, "_lib", None), "_name", "") or ".")
    files = sorted(library.parent.glob("lib*")) if library.is_file() else []
    return [_file_identity(f) for f in files if f.is_file()]
