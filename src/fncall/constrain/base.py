"""The constraint seam: a grammar built from a tool set, applied token by token by an engine.

A ``Constraint`` is compiled once per (tool set, tool_choice, parallel, syntax) and cached; each
generation asks it for a fresh ``TokenMatcher`` bound to the engine's vocabulary. The engine's
decode loop then, per step: ``mask_logits`` -> sample -> ``advance``; it stops when
``is_finished``. ``forced_tokens`` lets an engine fast-forward tokens the grammar fixes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np


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

    @property
    def is_finished(self) -> bool:
        """True once the grammar has accepted a complete output and nothing more may follow."""
        ...


@runtime_checkable
class Constraint(Protocol):
    """A compiled grammar for one tool set and tool_choice."""

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
