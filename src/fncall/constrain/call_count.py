"""How many calls: the decision after each call of a list, made on the model's odds.

A list of calls (``[{...}, {...}]`` in ``json``, ``[f(...), g(...)]`` in ``pythonic``) reaches
a decision after every call: ``,`` and another call, or the closing ``]``. Greedy decoding takes
whichever single token is likelier, and a small model ends the list too early on requests that
ask for several things (BFCL parallel: 97 of 200 answers one call short under ``json``).

``CallCount`` wraps a compiled constraint so that its matchers make that decision on the
*log-odds* of going on: at a step where the likeliest allowed token would settle it (end the
list, or go on), the probability mass of every allowed token that goes on is set against the
mass of every one that ends it (tokenizers merge these brackets with what comes before: ``"}``,
``}},``, ``}}]``), and the list goes on exactly when ``log P(more) - log P(end) >= threshold``.
Greedy decoding is close to ``threshold=0``; a negative threshold makes more calls. Steps that do
not settle it (inside a value, or a token that only closes brackets) are left alone, and so is
every output that is not a list (text, a single bare call, formats without a list).

**Coverage** (optional, ``Coverage``): the request's own values move the threshold. While a
value the request names (``fncall.values.request_values``: numbers, quoted text, names written
with capitals) is not in the list yet, going on is made easier by ``more``; once every one is
used, harder by ``fewer``. "Weather in Paris, London and Tokyo" ended after London leaves
Tokyo unused; "the BMI for 70 kg and 1.75 m" written once has nothing left to call for.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fncall.constrain.base import CallSyntax, Constraint, TokenMatcher, grammar_accepts
from fncall.errors import UserError
from fncall.values import request_values, unused_values

MORE, END = "more", "end"

# Per format, for LocalChat(count_threshold="auto"); a format not listed decodes greedily.
# Chosen on generated requests only (benchmarks/bench_count.py --seed 404: 80 requests, a
# quarter each simple / multiple / parallel / parallel_multiple; see the README): right call
# counts json 65 % greedy -> 79 % at -3 (-5: 75 %), pythonic 72.5 % greedy -> 79 % at 1 (3:
# the same 79 %, more lists cut short; the smaller change is kept).
DEFAULT_COUNT_THRESHOLDS: dict[str, float] = {
    "json": -3.0,
    "pythonic": 1.0,
    "pythonic-compact": 1.0,  # the same calls; its suite runs (README) had the decision on
}
# Per format, (more, fewer) for LocalChat(count_coverage="auto"); a format not listed has none.
DEFAULT_COUNT_COVERAGE: dict[str, tuple[float, float]] = {}


@dataclass(frozen=True)
class Coverage:
    """How the request's values move the call-count threshold (module docstring): ``more`` off
    it while one is unused, ``fewer`` onto it once all are used; no values, no change."""

    values: tuple[str, ...]
    more: float
    fewer: float

    def __post_init__(self) -> None:
        for name in ("more", "fewer"):
            amount = getattr(self, name)
            if (
                isinstance(amount, bool)
                or not isinstance(amount, int | float)
                or not (math.isfinite(amount) and amount >= 0)
            ):
                raise UserError(f"coverage {name} must be a number >= 0 (log-odds), got {amount!r}")

    @classmethod
    def of(cls, request: str, known: str = "", *, more: float, fewer: float) -> Coverage:
        """The coverage of ``request``; ``known`` is the offered tools' text (names and
        descriptions), whose words are not values."""
        return cls(request_values(request, known), more, fewer)

    def shift(self, text: str) -> float:
        """What to add to the threshold after ``text``, the output so far."""
        if not self.values:
            return 0.0
        return -self.more if unused_values(self.values, text) else self.fewer


@dataclass
class _Scan:
    """Where a call list's text stands: bracket depth outside strings, whether inside one."""

    quotes: str
    depth: int = 0
    quote: str = ""
    escaped: bool = False
    state: str = "before"  # before the list, "in" it, "after" it, or "none" (not a list)

    def copy(self) -> _Scan:
        return _Scan(self.quotes, self.depth, self.quote, self.escaped, self.state)

    def feed(self, text: str) -> str | None:
        """Advance over ``text``; returns ``MORE`` or ``END`` at the first character that
        decides the list (a ``,`` between calls, the closing ``]``), else None."""
        for char in text:
            if self.state in ("after", "none"):
                return None
            if self.quote:
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == self.quote:
                    self.quote = ""
                continue
            if self.state == "before":
                if char == "[":
                    self.state, self.depth = "in", 1
                elif char in "{(" or char in self.quotes:
                    self.state = "none"  # a bare call: no list to continue
                continue
            if char in self.quotes:
                self.quote = char
            elif char in "[{(":
                self.depth += 1
            elif char in "]})":
                self.depth -= 1
                if self.depth == 0:
                    self.state = "after"
                    return END
            elif char == "," and self.depth == 1:
                return MORE
        return None


class CallCount:
    """``constraint`` whose call lists go on while the odds of another call reach
    ``threshold`` (see the module docstring)."""

    def __init__(
        self, constraint: Constraint, threshold: float, coverage: Coverage | None = None
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise UserError(f"the call-count threshold must be a number, got {threshold!r}")
        if math.isnan(threshold):
            raise UserError("the call-count threshold must be a number, got nan")
        if not isinstance(constraint, Constraint):
            raise UserError(f"a call count needs a tool-call grammar with a syntax: {constraint!r}")
        self.inner = constraint
        self.syntax: CallSyntax = constraint.syntax
        self.threshold = float(threshold)
        if coverage is not None and not isinstance(coverage, Coverage):
            raise UserError(f"coverage must be a Coverage or None, got {coverage!r}")
        self.coverage = coverage

    def __repr__(self) -> str:
        return f"CallCount({self.inner!r}, threshold={self.threshold}, coverage={self.coverage})"

    def matcher(
        self,
        vocabulary: Sequence[bytes],
        eos_token_ids: Sequence[int],
        *,
        tokenize: Callable[[bytes], list[int]] | None = None,
    ) -> TokenMatcher:
        inner = self.inner.matcher(vocabulary, eos_token_ids, tokenize=tokenize)
        if not getattr(self.syntax, "call_list", False):
            return inner
        return _CountMatcher(
            inner, vocabulary, deciders(vocabulary), self.syntax, self.threshold, self.coverage
        )


_DECIDERS: OrderedDict[int, tuple[Sequence[bytes], np.ndarray]] = OrderedDict()
_DECIDERS_LOCK = threading.Lock()


def deciders(vocabulary: Sequence[bytes]) -> np.ndarray:
    """Ids of the tokens that could settle a list (those holding a ``,`` or a ``]``), cached per
    vocabulary object (a pass over 151k tokens: ~30 ms). The cache holds the vocabulary, so its
    id cannot be reused meanwhile."""
    with _DECIDERS_LOCK:
        hit = _DECIDERS.get(id(vocabulary))
        if hit is not None and hit[0] is vocabulary:
            _DECIDERS.move_to_end(id(vocabulary))
            return hit[1]
    ids = np.array(
        [i for i, piece in enumerate(vocabulary) if b"," in piece or b"]" in piece], dtype=np.int64
    )
    with _DECIDERS_LOCK:
        _DECIDERS[id(vocabulary)] = (vocabulary, ids)
        while len(_DECIDERS) > 4:
            _DECIDERS.popitem(last=False)
    return ids


def _logsumexp(values: np.ndarray) -> float:
    top = float(values.max())
    return top + math.log(float(np.exp(values.astype(np.float64) - top).sum()))


class _CountMatcher:
    """Delegates to the grammar's matcher; decides each list step on the odds of going on."""

    def __init__(
        self,
        inner: TokenMatcher,
        vocabulary: Sequence[bytes],
        candidates: np.ndarray,
        syntax: CallSyntax,
        threshold: float,
        coverage: Coverage | None = None,
    ) -> None:
        self._inner = inner
        self._vocabulary = vocabulary
        self._candidates = candidates
        self._syntax = syntax
        self._threshold = threshold
        self._coverage = coverage
        self._scan = _Scan(syntax.string_quotes)
        self._head = ""  # the text so far, until it is known to be a call (or text)
        self._pieces: list[str] = []  # the whole output so far, for the coverage
        self.decisions: list[tuple[str, float]] = []  # (chosen, log-odds) per settled step
        # The list's end, (ids, logits), when this step's decision took it away: the budget's
        # wrap-up (``prefer_closing``) gets it back.
        self._ended: tuple[np.ndarray, np.ndarray] | None = None

    def _piece(self, token: int) -> str:
        if not 0 <= token < len(self._vocabulary):
            return ""
        return self._vocabulary[token].decode("utf-8", "ignore")

    def _settles(self, token: int) -> str | None:
        return self._scan.copy().feed(self._piece(token))

    def mask_logits(self, logits: np.ndarray) -> None:
        self._inner.mask_logits(logits)
        self._ended = None
        if self._scan.state != "in":
            return
        best = int(np.argmax(logits))
        if not np.isfinite(logits[best]) or self._settles(best) is None:
            return
        ids = self._candidates[self._candidates < logits.shape[-1]]
        ids = ids[np.isfinite(logits[ids])]
        kinds = [self._settles(int(t)) for t in ids]
        more = ids[[k == MORE for k in kinds]]
        end = ids[[k == END for k in kinds]]
        if not more.size or not end.size:
            return
        odds = _logsumexp(logits[more]) - _logsumexp(logits[end])
        threshold = self._threshold
        if self._coverage is not None:
            threshold += self._coverage.shift("".join(self._pieces))
        chosen = MORE if odds >= threshold else END
        self.decisions.append((chosen, odds))
        keep = more if chosen == MORE else end
        if chosen == MORE:
            self._ended = (end, logits[end].copy())
        kept = logits[keep].copy()
        logits.fill(-np.inf)
        logits[keep] = kept

    def prefer_closing(self, logits: np.ndarray) -> bool:
        """Near the end of the budget, closing the list beats the count's choice to go on: a
        list the budget cuts off does not parse."""
        if self._ended is not None:
            ids, values = self._ended
            logits[ids] = values
        return self._inner.prefer_closing(logits)

    def advance(self, token_id: int) -> None:
        self._inner.advance(token_id)
        # Brackets, commas and quotes are ASCII: a character split across tokens cannot be one.
        piece = self._piece(token_id)
        if self._coverage is not None:
            self._pieces.append(piece)
        if self._scan.state == "before":
            self._head += piece
            if self._syntax.took_text_branch(self._head):
                self._scan.state = "none"  # free text, whatever brackets it holds
                return
        self._scan.feed(piece)

    def accepts(self, tokens: Sequence[int]) -> int:
        return grammar_accepts(self._inner, tokens)

    def forced_tokens(self) -> list[int]:
        return self._inner.forced_tokens()

    @property
    def is_finished(self) -> bool:
        return self._inner.is_finished
