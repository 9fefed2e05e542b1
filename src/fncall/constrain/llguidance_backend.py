"""The llguidance backend: a compiled grammar, a tokenizer per vocabulary, a matcher per sequence.

Why llguidance (figures in ``README.md``): sub-millisecond masks on a 151k vocabulary, grammars
with embedded JSON Schemas compile in milliseconds, and it is a maintained library that llama.cpp,
vLLM and SGLang use. The vocabulary arrives as bytes per token id (``Engine.vocabulary()``);
special tokens (the end-of-generation ids, and ``<|...|>`` / ``[PAD...]`` control pieces) are
marked so grammar text can never be spelled with them.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fncall.constrain.base import CallSyntax
from fncall.errors import ModelOutputError, UserError

Tokenize = Callable[[bytes], list[int]]

_SPECIAL = re.compile(rb"<\|[^|\s]{1,60}\|>|\[PAD\d+\]")
_SPECIAL_MARK = b"\xff"  # llguidance's convention: a leading 0xff byte marks a special token


def _llguidance() -> Any:
    try:
        import llguidance
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UserError(
            "constrained decoding needs llguidance: pip install 'fncall[llama]' "
            "(or llguidance==1.9.1)"
        ) from exc
    return llguidance


class _TokenizerSource:
    """What llguidance's TokenizerWrapper reads: token bytes, ids, and a tokenize function.

    Without an engine-supplied ``tokenize`` it tokenizes greedily with the llguidance tokenizer
    it is wrapped into (set after construction); that is only used for forced tokens.
    """

    def __init__(self, tokens: list[bytes], eos: int, tokenize: Tokenize | None) -> None:
        self.tokens = tokens
        self.eos_token_id = eos
        self.bos_token_id = None
        self.special_token_ids = [i for i, t in enumerate(tokens) if t.startswith(_SPECIAL_MARK)]
        self._tokenize = tokenize
        self.built: Any = None

    def __call__(self, text: str | bytes) -> list[int]:
        if self._tokenize is not None:
            data = text if isinstance(text, bytes) else text.encode("utf-8")
            return list(self._tokenize(data))
        if isinstance(text, bytes) or self.built is None:
            raise TypeError("greedy tokenization takes str")  # llguidance then passes str
        return list(self.built.greedy_tokenize(text))


# By vocabulary object (no hashing for an engine that keeps its list) and by content: a list
# equal to one seen before (a test engine builds one per call) gets the same tokenizer. Building
# one per list grew a server by ~80 KB a request (issue 20, item 8), and a tokenizer is never
# freed: its source refers back to it, a cycle through Rust that Python's collector cannot see.
_TokenizerKey = tuple[tuple[bytes, ...], tuple[int, ...], int]
_BY_OBJECT: OrderedDict[tuple[int, int, tuple[int, ...], int], tuple[Sequence[bytes], Any]] = (
    OrderedDict()
)
_BY_CONTENT: OrderedDict[_TokenizerKey, Any] = OrderedDict()
_TOKENIZERS_LOCK = threading.Lock()
_TOKENIZERS_MAX = 4


def llg_tokenizer(
    vocabulary: Sequence[bytes], eos_token_ids: Sequence[int], tokenize: Tokenize | None = None
) -> Any:
    """The llguidance tokenizer for this vocabulary, cached per vocabulary (~1 s to build for
    151k tokens). The cache holds the vocabulary, so its id cannot be reused meanwhile."""
    eos = tuple(int(t) for t in eos_token_ids)
    if not eos:
        raise UserError("constrained decoding needs at least one end-of-generation token id")
    fast = (id(vocabulary), len(vocabulary), eos, id(tokenize))
    with _TOKENIZERS_LOCK:
        hit = _BY_OBJECT.get(fast)
        if hit is not None and hit[0] is vocabulary:
            _BY_OBJECT.move_to_end(fast)
            return hit[1]
    content = (tuple(bytes(piece) for piece in vocabulary), eos, id(tokenize))
    with _TOKENIZERS_LOCK:
        tokenizer = _BY_CONTENT.get(content)
        if tokenizer is not None:
            _BY_CONTENT.move_to_end(content)
    if tokenizer is None:
        tokenizer = _build_tokenizer(vocabulary, eos, tokenize)
        with _TOKENIZERS_LOCK:
            _remember(_BY_CONTENT, content, tokenizer)
    with _TOKENIZERS_LOCK:
        _remember(_BY_OBJECT, fast, (vocabulary, tokenizer))
    return tokenizer


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _TOKENIZERS_MAX:
        cache.popitem(last=False)


def _build_tokenizer(
    vocabulary: Sequence[bytes], eos: tuple[int, ...], tokenize: Tokenize | None
) -> Any:
    llg = _llguidance()
    eos_set = set(eos)
    tokens = [
        _SPECIAL_MARK + piece
        if (i in eos_set or _SPECIAL.fullmatch(piece)) and not piece.startswith(_SPECIAL_MARK)
        else bytes(piece)
        for i, piece in enumerate(vocabulary)
    ]
    source = _TokenizerSource(tokens, eos[0], tokenize)
    tokenizer = llg.LLTokenizer(
        llg.TokenizerWrapper(source), n_vocab=len(tokens), eos_token=list(eos)
    )
    source.built = tokenizer
    return tokenizer


def validate_grammar(grammar: str) -> str:
    """Empty when the grammar compiles, else llguidance's error message."""
    llg = _llguidance()
    is_error, messages = llg.LLMatcher.validate_grammar_with_warnings(grammar)
    return "; ".join(messages) if is_error else ""


# Bytes that only close what is open: quotes end strings, brackets end lists, objects, calls.
# (Closing tags and fences are forced by the grammar anyway.) A syntax's own string quotes
# (``CallSyntax.string_quotes``) count as closing too.
CLOSING_BYTES = frozenset(b"\"']})")
_STRUCTURAL = frozenset(b"]})")
_WHITESPACE = frozenset(b" \t\r\n")


@dataclass(frozen=True)
class ClosingTokens:
    """Token ids by how they help finish a call: ending a string opened with ``"`` or ``'``,
    closing brackets, and whitespace (which only spends the budget)."""

    after_quote: dict[int, np.ndarray]  # quote byte -> tokens starting with it, closers only
    structural: np.ndarray
    whitespace: np.ndarray
    digits: np.ndarray  # tokens that start with a digit


def closing_tokens(vocabulary: Sequence[bytes], quotes: str = "\"'") -> ClosingTokens:
    """The tokens of ``vocabulary`` sorted by how they help finish a call whose strings open
    with one of ``quotes``."""
    closing = CLOSING_BYTES | frozenset(quotes.encode())
    after: dict[int, list[int]] = {quote: [] for quote in quotes.encode()}
    structural, whitespace, digits = [], [], []
    for i, piece in enumerate(vocabulary):
        if not piece:
            continue
        if piece[:1].isdigit():
            digits.append(i)
        if piece[0] in after and closing.issuperset(piece):
            after[piece[0]].append(i)
        if _STRUCTURAL.issuperset(piece):
            structural.append(i)
        if _WHITESPACE.issuperset(piece):
            whitespace.append(i)
    return ClosingTokens(
        after_quote={q: np.array(ids, dtype=np.int64) for q, ids in after.items()},
        structural=np.array(structural, dtype=np.int64),
        whitespace=np.array(whitespace, dtype=np.int64),
        digits=np.array(digits, dtype=np.int64),
    )


MAX_DIGIT_RUN = 40
"""Inside a call and outside strings, a run of digits ends after this many (see mask_logits)."""


def trailing_digits(piece: bytes) -> int:
    """How many ASCII digits ``piece`` ends with."""
    return len(piece) - len(piece.rstrip(b"0123456789"))


def open_quote(text: str, *, quotes: str) -> int | None:
    """The quote byte of the string literal ``text`` ends inside, if any: a string opens with
    one of ``quotes`` (JSON: ``"``; Python literals also ``'``), ends with the same character,
    and a backslash escapes the next character."""
    quote: str | None = None
    escaped = False
    for char in text:
        if quote is None:
            if char in quotes:
                quote = char
        elif escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == quote:
            quote = None
    return None if quote is None else ord(quote)


class LLGuidanceMatcher:
    """One sequence's grammar state (implements ``fncall.constrain.base.TokenMatcher``)."""

    def __init__(
        self,
        matcher: Any,
        vocabulary: Sequence[bytes],
        *,
        syntax: CallSyntax,
        closers: Callable[[], ClosingTokens] | None = None,
        eos_token_ids: Sequence[int] = (),
    ) -> None:
        self._matcher = matcher
        self._syntax = syntax
        self._closers = closers
        self._eos = np.array(sorted(set(eos_token_ids)), dtype=np.int64)
        self._vocabulary = vocabulary
        self._n = len(vocabulary)
        self._bitmask = np.full((1, (self._n + 31) // 32), -1, dtype=np.int32)
        self._tokens: list[int] = []
        self._digit_run = 0  # digits the accepted text ends with

    @property
    def text(self) -> str:
        """The text accepted so far."""
        return b"".join(self._vocabulary[t] for t in self._tokens).decode("utf-8", "replace")

    def _check(self) -> None:
        if self._matcher.is_error():
            raise ModelOutputError(
                f"grammar matcher failed: {self._matcher.get_error()}", raw=self.text
            )

    def allowed_tokens(self) -> np.ndarray:
        """Boolean array over the vocabulary: which tokens may come next."""
        self._bitmask.fill(0)
        bitmask = self._bitmask[0]
        self._matcher.unsafe_compute_mask_ptr(bitmask.ctypes.data, bitmask.nbytes)
        self._check()
        bits = np.unpackbits(bitmask.view(np.uint8), bitorder="little", count=self._n)
        return bits.view(np.bool_)

    def mask_logits(self, logits: np.ndarray) -> None:
        """Forbid what the grammar forbids; and inside a call, outside strings, more digits
        after ``MAX_DIGIT_RUN`` of them. The grammar bounds integers (``schema.INT_LIMIT``) but
        llguidance cannot bound the digits of a JSON ``number``, and a small model may write
        ``100000...`` until the token limit: a value the validator refuses (over 1,024 bits)
        or that overflows to infinity. Forty digits keep every number finite and valid."""
        allowed = self.allowed_tokens()
        n = min(self._n, logits.shape[-1])
        np.putmask(logits[:n], ~allowed[:n], -np.inf)
        if logits.shape[-1] > n:  # padding ids past the vocabulary are never allowed
            logits[n:] = -np.inf
        if self._digit_run >= MAX_DIGIT_RUN and self._closers is not None:
            text = self.text
            quotes = self._syntax.string_quotes
            if self._syntax.took_call_branch(text) and open_quote(text, quotes=quotes) is None:
                digits = self._closers().digits
                digits = digits[digits < n]
                if np.isfinite(logits[:n]).sum() > np.isfinite(logits[digits]).sum():
                    logits[digits] = -np.inf  # only when something else may still come

    def prefer_closing(self, logits: np.ndarray) -> bool:
        """Steer a call towards its end: the decode loop calls this (after ``mask_logits``) in
        the last tokens of its budget, so a call that ``max_tokens`` would cut off is closed
        instead and stays valid. Free text is left alone. In order, whichever is allowed:

        1. the end token;
        2. inside a string, a token that ends it (the quote, then only closing characters);
        3. outside strings, closing brackets;
        4. otherwise the model's own choice (e.g. a required key still to write), without
           whitespace-only tokens, which would only spend the budget.

        Returns whether the logits were changed."""
        if self._closers is None or not self._syntax.took_call_branch(self.text):
            return False
        tokens = self._closers()
        quote = open_quote(self.text, quotes=self._syntax.string_quotes)
        preferred = tokens.after_quote[quote] if quote is not None else tokens.structural
        for ids in (self._eos, preferred):
            ids = ids[ids < logits.shape[-1]]
            allowed = ids[np.isfinite(logits[ids])]
            if allowed.size:
                kept = logits[allowed].copy()
                logits.fill(-np.inf)
                logits[allowed] = kept
                return True
        spaces = tokens.whitespace[tokens.whitespace < logits.shape[-1]]
        before = np.isfinite(logits).sum()
        if np.isfinite(logits[spaces]).sum() < before:  # something besides whitespace fits
            logits[spaces] = -np.inf
            return True
        return False

    def advance(self, token_id: int) -> None:
        if not self._matcher.consume_token(int(token_id)):
            piece = self._vocabulary[token_id] if 0 <= token_id < self._n else b"?"
            raise ModelOutputError(
                f"token {token_id} ({piece!r}) is not allowed by the grammar here "
                f"({self._matcher.get_error() or 'rejected'})",
                raw=self.text,
            )
        self._tokens.append(int(token_id))
        piece = self._vocabulary[token_id]
        run = trailing_digits(piece)
        self._digit_run = self._digit_run + run if run == len(piece) else run

    def accepts(self, tokens: Sequence[int]) -> int:
        """How many of ``tokens``, in order, the grammar allows from here (state unchanged)."""
        count = int(self._matcher.try_consume_tokens([int(t) for t in tokens]))
        if count:
            self._matcher.rollback(count)
        self._check()
        return count

    def forced_tokens(self) -> list[int]:
        tokens = list(self._matcher.compute_ff_tokens())
        self._check()
        return tokens

    @property
    def is_finished(self) -> bool:
        return bool(self._matcher.is_stopped())

    @property
    def is_accepting(self) -> bool:
        """True when the output so far is complete (ending here is allowed)."""
        return bool(self._matcher.is_accepting())


def _compile(tokenizer: Any, grammar: str) -> Any:
    llg = _llguidance()
    limits = llg.LLParserLimits(verbose_errors=False)  # short errors, no grammar dump
    return llg.LLMatcher(tokenizer, grammar, log_level=0, limits=limits)


class LLGuidanceConstraint:
    """A compiled tool-call grammar (implements ``fncall.constrain.base.Constraint``).

    ``grammar`` is the Lark source, for inspection; ``syntax`` the call syntax it was written
    in (matchers ask it which branch the output took and how its strings are quoted). Matchers
    for one vocabulary are deep copies of one pristine matcher, so the grammar is compiled
    against a tokenizer only once: when the first matcher is asked for, not before (compiling
    is the expensive part, ~1 ms per tool, and validating first would pay it twice). A grammar
    that does not compile is handed to ``repair`` (if given), which returns one that does.
    """

    def __init__(
        self,
        grammar: str,
        *,
        syntax: CallSyntax,
        tool_names: tuple[str, ...],
        require_call: bool,
        parallel: bool,
        repair: Callable[[str], str] | None = None,
    ) -> None:
        self.grammar = grammar
        self._repair = repair
        self.syntax = syntax
        self.tool_names = tool_names
        self.require_call = require_call
        self.parallel = parallel
        self._pristine: tuple[Any, Any] | None = None
        self._closers: tuple[Sequence[bytes], ClosingTokens] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        mode = "required" if self.require_call else "auto"
        return (
            f"LLGuidanceConstraint(syntax={self.syntax.name!r}, tools={len(self.tool_names)}, "
            f"mode={mode!r}, parallel={self.parallel})"
        )

    def matcher(
        self,
        vocabulary: Sequence[bytes],
        eos_token_ids: Sequence[int],
        *,
        tokenize: Tokenize | None = None,
    ) -> LLGuidanceMatcher:
        """A fresh matcher. ``tokenize`` (optional) is the model's own tokenizer, used to split
        forced text the way the model would; without it forced text is tokenized greedily."""
        tokenizer = llg_tokenizer(vocabulary, eos_token_ids, tokenize)
        with self._lock:
            if self._pristine is None or self._pristine[0] is not tokenizer:
                compiled = _compile(tokenizer, self.grammar)
                if compiled.is_error() and self._repair is not None:
                    self.grammar = self._repair(compiled.get_error())
                    self._repair = None
                    compiled = _compile(tokenizer, self.grammar)
                if compiled.is_error():
                    raise UserError(
                        f"the tool-call grammar does not compile: {compiled.get_error()}"
                    )
                self._pristine = (tokenizer, compiled)
            pristine = self._pristine[1].deep_copy()

        def closers() -> ClosingTokens:  # computed on first use, once per vocabulary
            with self._lock:
                if self._closers is None or self._closers[0] is not vocabulary:
                    quotes = self.syntax.string_quotes
                    self._closers = (vocabulary, closing_tokens(vocabulary, quotes))
                return self._closers[1]

        return LLGuidanceMatcher(
            pristine, vocabulary, syntax=self.syntax, closers=closers, eos_token_ids=eos_token_ids
        )
