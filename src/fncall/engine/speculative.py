"""Prompt-lookup drafts for greedy decoding: guess the next tokens from the context itself.

Tool calls copy from the request (``city="Paris"``) and from the tool list (names, parameter
names); answers after a tool result copy from the result. When the context's last few tokens
occurred before, the tokens that followed them then are a cheap guess of what follows now. The
decode loop evaluates the guess in the same batch as the last chosen token, reads the model's
own choice at every position, keeps the guessed tokens up to the first the model would not
have chosen, and drops the rest from the KV cache. On a CPU a batch of five tokens costs about
1.5 times one token (the default model on two cores: 57 vs 37 ms), so an accepted guess of two
or more tokens is a gain and a refused one a small loss.

Only greedy decoding is drafted (``temperature`` 0): every kept token is the model's own argmax
under the same grammar mask. That makes the loop's choices those of plain decoding, but not
always the model's numbers: llama.cpp evaluates a batch of tokens with other kernels than one
token, and on the default model the logits differ by up to ~0.5 (measured at four positions of
a call), enough to flip near-ties. Measured on the default model, two cores, the demo's five
questions and ten BFCL cases (seed 1), one run each: guessing 2 tokens from 3-token matches took
the cases from 55.6 to 50.0 s and the demo from 16.2 to 16.5 s, and 2 of 22 outputs changed
(4 tokens from 2- or 3-token matches: 52.3 s, 16.7 s, 3 changed). So drafting is off by default
(``DEFAULT_DRAFT_TOKENS`` = 0): a small gain here does not pay for outputs that differ from the
undrafted ones. It is there for engines where a wider batch costs relatively less.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

DEFAULT_DRAFT_TOKENS = 0
"""Tokens guessed per step (0: no drafting; see above). 2 gave the best of the runs above."""

NGRAM_SIZES = (3,)
"""Suffix lengths looked up, longest first. Shorter matches guess wrongly more often, and a
refused guess costs a wider batch for nothing: above, 29% of the guessed tokens were refused
with 3-token matches and 54% with 2- or 3-token ones."""


class DraftVerifier(Protocol):
    """What an engine offers the decode loop for drafted tokens."""

    def verify(self, batch: list[int], draft: list[int]) -> Callable[[int], np.ndarray]:
        """Evaluate ``batch`` then ``draft`` in the KV cache; return ``logits(i)``: the logits
        after ``batch``'s last token (``i`` = 0) and after ``draft[i - 1]`` (``i`` >= 1), as
        arrays the loop may modify in place."""
        ...

    def rewind(self, count: int) -> None:
        """Drop the last ``count`` evaluated tokens from the KV cache."""
        ...


class PromptLookup:
    """Drafts from earlier occurrences of the context's last ``NGRAM_SIZES`` tokens.

    ``context`` is the whole prompt; ``append`` each generated token. The index maps an n-gram
    to where the tokens after its latest occurrence begin; the context's own suffix is indexed
    only once a token follows it, so a lookup always finds an earlier occurrence.
    """

    def __init__(self, context: Sequence[int], *, max_draft: int = DEFAULT_DRAFT_TOKENS) -> None:
        self.max_draft = max_draft
        self._tokens: list[int] = []
        self._index: dict[tuple[int, ...], int] = {}
        for token in context:
            self.append(token)

    def append(self, token: int) -> None:
        tokens, end = self._tokens, len(self._tokens)
        for size in NGRAM_SIZES:
            if end >= size:
                self._index[tuple(tokens[end - size :])] = end
        tokens.append(token)

    def draft(self, limit: int) -> list[int]:
        """Up to ``min(limit, max_draft)`` guessed next tokens (none when nothing matches)."""
        limit = min(limit, self.max_draft)
        if limit <= 0:
            return []
        tokens = self._tokens
        for size in NGRAM_SIZES:
            if len(tokens) >= size:
                start = self._index.get(tuple(tokens[-size:]))
                if start is not None:
                    return tokens[start : start + limit]
        return []
