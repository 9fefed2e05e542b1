"""The constraint seams: a call syntax, a grammar built from a tool set, a matcher per sequence.

A ``CallSyntax`` is what the grammar side needs from one tool-call syntax; the formats of
``fncall.formats`` implement it (this package never imports them: a syntax object is passed in).
A ``Constraint`` is compiled once per (tool set, tool_choice, parallel, syntax) and cached; each
generation asks it for a fresh ``TokenMatcher`` bound to the engine's vocabulary. The engine's
decode loop then, per step: ``mask_logits`` -> sample -> ``advance``; it stops when
``is_finished``. ``forced_tokens`` lets an engine fast-forward tokens the grammar fixes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

ToolSpec = tuple[str, Mapping[str, Any]]
"""A tool as the grammar sees it: its name and its normalised arguments schema."""


@runtime_checkable
class CallSyntax(Protocol):
    """One tool-call syntax, as the grammar writer and the matcher need it.

    Under ``tool_choice="auto"`` the output is free text or calls, and the first character
    decides: free text must match ``text_start`` (by default: not whitespace, not one of
    ``call_start``), a call begins with one of ``call_start``. ``took_call_branch`` and
    ``took_text_branch`` read that decision back from generated text.
    """

    name: str
    call_start: str  # the characters a call may start with
    string_quotes: str  # the characters that open a string literal inside a call
    terminals: str  # Lark terminals the rules use, written once at the end of the grammar

    @property
    def text_start(self) -> str:
        """The regex the first characters of free text match under ``auto``."""
        ...

    def calls_rules(self, tools: Sequence[ToolSpec], *, parallel: bool) -> list[str]:
        """Lark rules (llguidance dialect) defining ``calls``: one call of any of ``tools``, or
        several when ``parallel``. Tool ``i`` is ``tools[i]``; its schema is already normalised
        (``fncall.constrain.schema.arguments_schema``)."""
        ...

    def took_call_branch(self, text: str) -> bool:
        """Whether ``text``, generated under an ``auto`` grammar, took the call branch. Output
        that took the text branch is plain text, whatever it later quotes."""
        ...

    def took_text_branch(self, text: str) -> bool:
        """Whether ``text`` can no longer become a call (False while undecided)."""
        ...


@runtime_checkable
class TokenMatcher(Protocol):
    """Per-sequence grammar state."""

    def mask_logits(self, logits: np.ndarray) -> None:
        """Set the logits of every token the grammar forbids next to ``-inf``, in place."""
        ...

    def advance(self, token_id: int) -> None:
        """Accept the sampled token (raises if the grammar forbids it)."""
        ...

    def forced_tokens(self) -> list[int]:
        """Tokens the grammar fixes from here on (may be empty)."""
        ...

    def prefer_closing(self, logits: np.ndarray) -> bool:
        """Near the end of the token budget (called after ``mask_logits``): narrow ``logits``
        in place to tokens that bring an open call to its end, so it ends valid instead of cut
        off. Returns whether the logits changed; a matcher that cannot steer leaves them alone
        and returns False (the decode loop then samples as usual)."""
        ...

    @property
    def is_finished(self) -> bool:
        """True once the grammar has accepted a complete output and nothing more may follow."""
        ...


def grammar_accepts(matcher: TokenMatcher, tokens: Sequence[int]) -> int:
    """How many of ``tokens``, in order, ``matcher`` would accept from its current state, which
    is left unchanged. Optional for a matcher (a method ``accepts(tokens) -> int``): one
    without it is taken to accept them all. The decode loop uses it only to trim guessed tokens
    (``fncall.engine.speculative``); every kept token is still checked by ``mask_logits``."""
    accepts = getattr(matcher, "accepts", None)
    return len(tokens) if accepts is None else int(accepts(tokens))


@runtime_checkable
class Constraint(Protocol):
    """A compiled grammar for one tool set, tool_choice and call syntax."""

    syntax: CallSyntax

    def matcher(
        self,
        vocabulary: Sequence[bytes],
        eos_token_ids: Sequence[int],
        *,
        tokenize: Callable[[bytes], list[int]] | None = None,
    ) -> TokenMatcher:
        """A fresh matcher for one generation. ``vocabulary`` holds the bytes of every token id;
        ``tokenize`` (optional) is the model's tokenizer, used to split text the grammar forces
        the way the model would (without it, forced text is tokenized greedily)."""
        ...
