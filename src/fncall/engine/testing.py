"""Helpers to test the engines' decode loop without a model.

``decode_fake_model`` runs ``run_decode_loop`` (the loop both local engines share) under a
constraint over a fake model whose logits a test function gives, on the byte vocabulary of
``fncall.constrain.testing``. It lives here, not in ``constrain``, because the decode loop is
the engine's: constrain sits below engine and must not import it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

from fncall.constrain.base import Constraint
from fncall.constrain.testing import byte_vocabulary
from fncall.engine.decoding import DecodeRequest, TextStream, run_decode_loop


@cache
def _vocabulary() -> tuple[list[bytes], int]:
    return byte_vocabulary()  # one shared object, so the backend's tokenizer cache hits


def decode_fake_model(
    constraint: Constraint,
    next_logits: Callable[[str], np.ndarray],
    *,
    max_tokens: int,
    wrap_up: int = 0,
) -> tuple[str, str, int]:
    """Run the engines' decode loop under ``constraint`` over a fake model on the byte
    vocabulary: ``next_logits(text so far)`` gives its logits. Returns
    ``(text, finish reason, tokens generated)``."""
    vocabulary, eos = _vocabulary()
    request = DecodeRequest(
        pending=[],
        max_tokens=max_tokens,
        temperature=0.0,
        rng=np.random.default_rng(0),
        stream=TextStream((), None),
        pieces=vocabulary,
        eog=frozenset({eos}),
        matcher=constraint.matcher(vocabulary, [eos]),
        wrap_up=wrap_up,
    )
    generated, finish = run_decode_loop(
        request, lambda tokens: None, lambda: next_logits(request.stream.text)
    )
    return request.stream.finish(), finish, len(generated)
