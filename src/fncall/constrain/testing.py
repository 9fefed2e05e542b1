"""Helpers to check a constraint without a model: a small vocabulary and ``accepts``.

``accepts`` drives a matcher token by token over a text exactly as an engine would (mask the
logits, check the token survived, advance) and then asks whether the output may end there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fncall.constrain.base import Constraint
from fncall.errors import ModelOutputError

EXTRA_PIECES: tuple[bytes, ...] = (
    b'[{"name": "',
    b'", "arguments": ',
    b'{"',
    b'": "',
    b'", "',
    b'"}',
    b"}]",
    b"}, ",
    b"<tool_call>",
    b"</tool_call>",
    b"<tool_call>\n",
    b"name",
    b"arguments",
    b"parameters",
    b"True",
    b"False",
    b"None",
    b"null",
    b"true",
    b"false",
    b"Paris",
    b"get",
    b"_weather",
    b"  ",
    b"\n\n",
    b"```",
    b"```json\n",
    b"Hello",
    b" world",
    b"caf\xc3\xa9",
)
END_OF_TEXT = b"<|im_end|>"


def byte_vocabulary(extra: Sequence[bytes] = EXTRA_PIECES) -> tuple[list[bytes], int]:
    """Every single byte, some multi-byte pieces, and an end token; returns (vocab, eos id)."""
    vocabulary = [bytes([i]) for i in range(256)]
    vocabulary += [piece for piece in dict.fromkeys(extra) if len(piece) > 1]
    vocabulary.append(END_OF_TEXT)
    return vocabulary, len(vocabulary) - 1


def greedy_tokens(text: str | bytes, vocabulary: Sequence[bytes]) -> list[int]:
    """Longest-match tokenization (every byte must be in the vocabulary)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    ids = {piece: i for i, piece in enumerate(vocabulary) if piece}
    longest = max(len(piece) for piece in ids)
    out, at = [], 0
    while at < len(data):
        for size in range(min(longest, len(data) - at), 0, -1):
            token = ids.get(data[at : at + size])
            if token is not None:
                out.append(token)
                at += size
                break
        else:
            raise ValueError(f"byte {data[at]:#x} at {at} has no token")
    return out


def accepts(
    constraint: Constraint,
    text: str | bytes,
    vocabulary: Sequence[bytes] | None = None,
    eos_token_id: int | None = None,
) -> bool:
    """True when the grammar admits ``text`` as a complete output, token by token."""
    if vocabulary is None:
        vocabulary, eos_token_id = _default_vocabulary()
    if eos_token_id is None:
        eos_token_id = len(vocabulary) - 1
    matcher = constraint.matcher(vocabulary, [eos_token_id])
    logits = np.zeros(len(vocabulary), dtype=np.float32)
    for token in greedy_tokens(text, vocabulary):
        logits.fill(0.0)
        matcher.mask_logits(logits)
        if logits[token] == -np.inf:
            return False
        try:
            matcher.advance(token)
        except ModelOutputError:
            return False
    logits.fill(0.0)
    matcher.mask_logits(logits)
    return bool(logits[eos_token_id] != -np.inf)


_DEFAULT: tuple[list[bytes], int] | None = None


def _default_vocabulary() -> tuple[list[bytes], int]:
    global _DEFAULT
    if _DEFAULT is None:  # one shared object, so the backend's tokenizer cache hits
        _DEFAULT = byte_vocabulary()
    return _DEFAULT
