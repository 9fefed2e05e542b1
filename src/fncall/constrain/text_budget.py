"""A token budget for plain-text answers under an ``auto`` grammar.

Under ``tool_choice="auto"`` the grammar lets the model either call or answer in text, and it
commits on the first characters (``CallSyntax.took_text_branch``). When only that decision matters
(scoring a benchmark, routing a request), writing the rest of the prose costs time and changes
nothing: a text answer is never mined for calls. ``TextBudget`` wraps a compiled constraint so
that its matchers finish once a committed text answer reaches ``max_tokens`` tokens; calls are
untouched and keep the engine's own limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fncall.constrain.base import CallSyntax, Constraint, TokenMatcher, grammar_accepts
from fncall.errors import UserError


class TextBudget:
    """``constraint`` whose plain-text answers stop after ``max_tokens`` tokens."""

    def __init__(self, constraint: Constraint, max_tokens: int) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise UserError(f"a text answer's token budget must be >= 1, got {max_tokens!r}")
        if not isinstance(constraint, Constraint):
            raise UserError(
                f"a text budget needs a tool-call grammar with a syntax: {constraint!r}"
            )
        self.inner = constraint
        self.syntax: CallSyntax = constraint.syntax
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"TextBudget({self.inner!r}, max_tokens={self.max_tokens})"

    def matcher(
        self,
        vocabulary: Sequence[bytes],
        eos_token_ids: Sequence[int],
        *,
        tokenize: Callable[[bytes], list[int]] | None = None,
    ) -> TokenMatcher:
        inner = self.inner.matcher(vocabulary, eos_token_ids, tokenize=tokenize)
        return _BudgetMatcher(inner, vocabulary, self.syntax, self.max_tokens)


class _BudgetMatcher:
    """Delegates to the grammar's matcher; finished early once text has used its budget."""

    def __init__(
        self, inner: TokenMatcher, vocabulary: Sequence[bytes], syntax: CallSyntax, budget: int
    ) -> None:
        self._inner = inner
        self._vocabulary = vocabulary
        self._syntax = syntax
        self._budget = budget
        self._head = b""  # the first bytes, until the branch is known
        self._text: bool | None = None  # None: undecided; False: a call
        self._count = 0

    def mask_logits(self, logits: np.ndarray) -> None:
        self._inner.mask_logits(logits)

    def prefer_closing(self, logits: np.ndarray) -> bool:
        return self._inner.prefer_closing(logits)

    def advance(self, token_id: int) -> None:
        self._inner.advance(token_id)
        self._count += 1
        if self._text is None and 0 <= token_id < len(self._vocabulary):
            self._head += self._vocabulary[token_id]
            head = self._head.decode("utf-8", "ignore")
            if self._syntax.took_text_branch(head):
                self._text = True
            elif self._syntax.took_call_branch(head):
                self._text = False

    def accepts(self, tokens: Sequence[int]) -> int:
        return grammar_accepts(self._inner, tokens)

    def forced_tokens(self) -> list[int]:
        return self._inner.forced_tokens()

    @property
    def is_finished(self) -> bool:
        return self._inner.is_finished or (self._text is True and self._count >= self._budget)
