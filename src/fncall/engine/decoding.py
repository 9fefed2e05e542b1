"""Decode-loop pieces shared by the local engines (llama.cpp, transformers).

Both engines run the same loop; only "evaluate these tokens" and "give me the next logits" differ.
``run_decode_loop`` holds that loop, so constraint handling, stop strings, streaming and
sampling behave identically whichever backend produced the logits.

Per step the logits go through, in order: ``logit_bias`` (added), the presence and frequency
penalties (OpenAI's: ``logits[j] -= count[j] * frequency_penalty + (count[j] > 0) *
presence_penalty``, counting the tokens generated so far, forced ones included), the grammar's
mask, then ``temperature``, ``min_p`` and ``top_p`` when a token is drawn (vLLM's order; see
``sample_token``). A bias cannot bring back a token the grammar forbids: the mask comes after
it. Log-probabilities (``top_logprobs``) are read from the distribution before temperature,
min_p and top_p (``TokenLogprob``): they do not reflect those filters.
"""

from __future__ import annotations

import codecs
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from fncall.constrain.base import grammar_accepts
from fncall.engine.base import Generation, TokenLogprob
from fncall.engine.speculative import DraftVerifier, PromptLookup
from fncall.errors import ModelOutputError, UserError

if TYPE_CHECKING:
    from fncall.constrain.base import TokenMatcher


def check_options(
    max_tokens: int,
    temperature: float,
    stop: Sequence[str],
    *,
    top_p: float = 1.0,
    min_p: float = 0.0,
) -> list[str]:
    """Validate the common ``generate`` options; returns the stop strings as a list."""
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise UserError(f"max_tokens must be an integer >= 0, got {max_tokens!r}")
    if not isinstance(temperature, int | float) or not temperature >= 0:
        raise UserError(f"temperature must be a number >= 0 (0 = greedy), got {temperature!r}")
    if isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 < top_p <= 1:
        raise UserError(f"top_p must be a number in (0, 1] (1 = every token), got {top_p!r}")
    check_min_p(min_p)
    if isinstance(stop, str):
        stop = [stop]
    stops = list(stop)
    bad = [s for s in stops if not isinstance(s, str) or not s]
    if bad:
        raise UserError(f"stop must be a list of non-empty strings, got {bad!r} in {stops!r}")
    return stops


MAX_TOP_LOGPROBS = 20
MAX_LOGIT_BIAS = 100.0
MAX_PENALTY = 2.0


class SamplingFields(TypedDict):
    """``DecodeRequest``'s OpenAI sampling fields, as ``check_sampling`` returns them."""

    logit_bias: dict[int, float] | None
    presence_penalty: float
    frequency_penalty: float
    top_logprobs: int | None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_min_p(min_p: float) -> float:
    """Validate ``min_p`` (vLLM's and llama.cpp's extension field); returns it as a float."""
    if not _number(min_p) or not 0 <= min_p <= 1:
        raise UserError(
            f"min_p: must be a number from 0 to 1 (0 = off; a token is kept when its "
            f"probability is at least min_p times the likeliest token's), got {min_p!r}"
        )
    return float(min_p)


def check_sampling(
    *,
    vocab_size: int,
    logit_bias: Mapping[int, float] | None = None,
    presence_penalty: float = 0.0,
    frequency_penalty: float = 0.0,
    top_logprobs: int | None = None,
) -> SamplingFields:
    """Validate the OpenAI sampling fields of ``generate`` against a vocabulary of
    ``vocab_size`` token ids (OpenAI's ranges); neutral values come back as ``None`` / 0."""
    for name, value in (
        ("presence_penalty", presence_penalty),
        ("frequency_penalty", frequency_penalty),
    ):
        if not _number(value) or not -MAX_PENALTY <= value <= MAX_PENALTY:
            raise UserError(
                f"{name}: must be a number from -{MAX_PENALTY:g} to {MAX_PENALTY:g} "
                f"(0 = none), got {value!r}"
            )
    if top_logprobs is not None and (
        isinstance(top_logprobs, bool)
        or not isinstance(top_logprobs, int)
        or not 0 <= top_logprobs <= MAX_TOP_LOGPROBS
    ):
        raise UserError(
            f"top_logprobs: must be an integer from 0 to {MAX_TOP_LOGPROBS} (None = no "
            f"log-probabilities), got {top_logprobs!r}"
        )
    bias: dict[int, float] | None = None
    if logit_bias is not None:
        if not isinstance(logit_bias, Mapping):
            raise UserError(
                f"logit_bias: must be a mapping of token id to bias, got {logit_bias!r}"
            )
        for token, value in logit_bias.items():
            if isinstance(token, bool) or not isinstance(token, int | np.integer):
                raise UserError(f"logit_bias: keys must be integer token ids, got {token!r}")
            if not 0 <= token < vocab_size:
                raise UserError(
                    f"logit_bias: token id {token} is not in this model's vocabulary "
                    f"(ids 0 to {vocab_size - 1})"
                )
            if not _number(value) or not -MAX_LOGIT_BIAS <= value <= MAX_LOGIT_BIAS:
                raise UserError(
                    f"logit_bias: the bias of token {token} must be a number from "
                    f"-{MAX_LOGIT_BIAS:g} to {MAX_LOGIT_BIAS:g}, got {value!r}"
                )
        bias = {int(token): float(value) for token, value in logit_bias.items()} or None
    return SamplingFields(
        logit_bias=bias,
        presence_penalty=float(presence_penalty),
        frequency_penalty=float(frequency_penalty),
        top_logprobs=top_logprobs,
    )


def check_continuations(continuations: Sequence[str]) -> list[str]:
    """Validate ``Engine.score``'s continuations: a list of non-empty strings."""
    if isinstance(continuations, str):
        raise UserError(
            f"continuations must be a list of strings, got the string {continuations!r}"
        )
    items = list(continuations)
    bad = [c for c in items if not isinstance(c, str) or not c]
    if not items or bad:
        raise UserError(
            f"continuations must be a non-empty list of non-empty strings, got {items!r}"
        )
    return items


def sample_token(
    logits: np.ndarray,
    temperature: float,
    rng: np.random.Generator,
    *,
    top_p: float = 1.0,
    min_p: float = 0.0,
) -> int:
    """Greedy at temperature 0, else a draw from softmax(logits / temperature), restricted
    first by ``min_p`` > 0 to the tokens whose probability is at least ``min_p`` times the
    likeliest token's, then by ``top_p`` < 1 to the likeliest of those whose probabilities
    (renormalised over them) together reach it (nucleus sampling).

    The order is vLLM's (temperature, min_p, top_p). llama.cpp's default chain applies top_p,
    then min_p, then temperature: its filters see the unscaled distribution, so at a
    temperature other than 1 it keeps a different set of tokens.

    Masked tokens (``-inf``) get probability 0 and are never drawn.
    """
    if temperature <= 0:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max()
    weights = np.exp(scaled)
    if min_p > 0:
        # The likeliest token's weight is exp(0) = 1, so each weight is already its
        # probability relative to the likeliest token's.
        weights[weights < min_p] = 0.0
    if top_p < 1:
        candidates = np.flatnonzero(weights)  # under a grammar: the few allowed tokens
        order = candidates[np.argsort(-weights[candidates], kind="stable")]
        reached = np.cumsum(weights[order]) >= top_p * weights[order].sum()
        kept = order[: int(np.argmax(reached)) + 1]
        nucleus = np.zeros_like(weights)
        nucleus[kept] = weights[kept]
        weights = nucleus
    cdf = np.cumsum(weights)
    return int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))


class TextStream:
    """Token bytes in, text out: incremental UTF-8 decoding, stop strings, and ``on_text``.

    A multi-byte character split across tokens is emitted once it is complete. Text that could
    still turn out to be the start of a stop string is held back until it cannot.
    """

    def __init__(self, stop: Sequence[str], on_text: Callable[[str], None] | None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stop = list(stop)
        self._longest = max((len(s) for s in self._stop), default=0)
        self._on_text = on_text
        self._emitted = 0
        self.text = ""
        self.stopped = False

    def feed(self, piece: bytes) -> bool:
        """Add one token's bytes; True once a stop string has appeared (the text ends before it)."""
        new = self._decoder.decode(piece)
        if not new:
            return False
        search_from = max(0, len(self.text) - self._longest + 1)
        self.text += new
        if self._stop:
            hits = [i for s in self._stop if (i := self.text.find(s, search_from)) != -1]
            if hits:
                self.text = self.text[: min(hits)]
                self.stopped = True
                self._emit(len(self.text))
                return True
        self._emit(len(self.text) - self._held_back())
        return False

    def finish(self) -> str:
        """Flush what is left (an incomplete character becomes U+FFFD); returns the whole text."""
        if not self.stopped:
            self.text += self._decoder.decode(b"", final=True)
        self._emit(len(self.text))
        return self.text

    def _held_back(self) -> int:
        for size in range(min(self._longest - 1, len(self.text)), 0, -1):
            tail = self.text[-size:]
            if any(s.startswith(tail) for s in self._stop):
                return size
        return 0

    def _emit(self, upto: int) -> None:
        if upto > self._emitted:
            if self._on_text is not None:
                self._on_text(self.text[self._emitted : upto])
            self._emitted = upto


WRAP_UP_TOKENS = 64


@dataclass
class DecodeRequest:
    """Everything one decode needs besides the backend."""

    pending: list[int]  # prompt tokens not yet evaluated (the uncached suffix)
    max_tokens: int
    temperature: float
    rng: np.random.Generator
    stream: TextStream
    pieces: Sequence[bytes]  # bytes of each token id
    eog: frozenset[int]  # end-of-generation token ids
    matcher: TokenMatcher | None = None
    top_p: float = 1.0
    min_p: float = 0.0  # vLLM's / llama.cpp's extension field (``sample_token``)
    # In the last ``wrap_up`` tokens of the budget (at most a quarter of it), a matcher that can
    # prefer closing tokens does, so a call ends valid instead of being cut off.
    wrap_up: int = WRAP_UP_TOKENS
    # The whole prompt (drafts are guessed from it) and how many tokens to guess per step.
    context: Sequence[int] = ()
    draft_tokens: int = 0
    # OpenAI's sampling fields (see the module docstring; ``check_sampling`` validates them).
    logit_bias: dict[int, float] | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    top_logprobs: int | None = None  # None: no log-probabilities recorded
    # Filled by ``run_decode_loop`` when ``top_logprobs`` is set: per generated token, its id,
    # log-probability and the top alternatives as (id, log-probability) pairs.
    scores: list[tuple[int, float, tuple[tuple[int, float], ...]]] | None = None


class _Scorer:
    """Records the log-probability of each generated token and its top alternatives."""

    def __init__(self, top: int, scores: list[tuple[int, float, tuple[tuple[int, float], ...]]]):
        self.top = top
        self.scores = scores
        self._next: tuple[int, float, tuple[tuple[int, float], ...]] | None = None

    def chosen(self, logits: np.ndarray, token: int) -> None:
        """``token`` was drawn from ``logits`` (biased, penalised, masked; before temperature)."""
        values = logits.astype(np.float64)
        total = float(np.max(values))
        total += math.log(float(np.exp(values - total).sum()))
        top: tuple[tuple[int, float], ...] = ()
        if self.top:
            count = min(self.top, len(values))
            ids = np.argpartition(-values, count - 1)[:count]
            ids = ids[np.isfinite(values[ids])]  # masked tokens are never alternatives
            ranked = sorted(ids.tolist(), key=lambda i: (-values[i], i))
            top = tuple((i, float(values[i]) - total) for i in ranked)
        self._next = (token, float(values[token]) - total, top)

    def forced(self, token: int) -> None:
        """The grammar forced ``token``: certain."""
        self._next = (token, 0.0, ((token, 0.0),) if self.top else ())

    def keep(self) -> None:
        """The last chosen or forced token joined the output."""
        assert self._next is not None
        self.scores.append(self._next)
        self._next = None


def run_decode_loop(
    request: DecodeRequest,
    evaluate: Callable[[list[int]], None],
    next_logits: Callable[[], np.ndarray],
    *,
    verifier: DraftVerifier | None = None,
) -> tuple[list[int], str]:
    """The shared loop. Returns (generated token ids, finish reason).

    ``evaluate(tokens)`` feeds tokens to the model (the pending prompt suffix first, then each
    chosen token together with any tokens the grammar forces after it: one batch, no sampling).
    ``next_logits()`` returns the logits after the last evaluated token as a float32 array the
    loop may modify in place. With a matcher, per step: ``mask_logits`` -> sample -> ``advance``;
    forced tokens are advanced one by one; the loop stops on an end-of-generation token, a stop
    string, ``is_finished``, or ``max_tokens``. Near the end of the budget the matcher's
    ``prefer_closing`` may narrow a call's choices to closing tokens (see
    ``DecodeRequest.wrap_up``); a generation shaped that way reports ``finish_reason="length"``.

    With a ``verifier``, greedy decoding (``temperature`` 0) and ``request.draft_tokens`` > 0,
    each step also evaluates tokens guessed from the context (``fncall.engine.speculative``)
    and keeps those the model itself chooses: the same choices, fewer forward passes. The
    sampling fields hold there too: each position is chosen in order, after the tokens before
    it were counted.

    ``logit_bias``, the penalties and ``top_logprobs`` cost nothing when unset; with
    ``top_logprobs`` set, ``request.scores`` is filled, one entry per generated token.
    """
    matcher, stream, pieces, eog = request.matcher, request.stream, request.pieces, request.eog
    wrap_up_from = request.max_tokens - min(request.wrap_up, request.max_tokens // 4)
    done = "stop"  # the finish reason of an ended output; "length" once wrap-up shaped it
    generated: list[int] = []
    drafting = verifier is not None and request.draft_tokens > 0 and request.temperature <= 0
    lookup = PromptLookup(request.context, max_draft=request.draft_tokens) if drafting else None
    bias_ids = bias_values = None
    if request.logit_bias:
        bias_ids = np.fromiter(request.logit_bias, dtype=np.int64)
        bias_values = np.fromiter(request.logit_bias.values(), dtype=np.float32)
    presence, frequency = request.presence_penalty, request.frequency_penalty
    counts: dict[int, int] | None = {} if presence or frequency else None
    scorer = None
    if request.top_logprobs is not None:
        request.scores = []
        scorer = _Scorer(request.top_logprobs, request.scores)

    def choose(logits: np.ndarray) -> int:
        nonlocal done
        if bias_ids is not None:
            logits[bias_ids] += bias_values
        if counts:
            ids = np.fromiter(counts, dtype=np.int64, count=len(counts))
            seen = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            logits[ids] -= (seen * frequency + presence).astype(logits.dtype)
        if matcher is not None:
            matcher.mask_logits(logits)
            wrapping = len(generated) >= wrap_up_from
            if wrapping and matcher.prefer_closing(logits):
                done = "length"
        token = sample_token(
            logits, request.temperature, request.rng, top_p=request.top_p, min_p=request.min_p
        )
        if matcher is not None:
            if logits[token] == -np.inf:
                raise ModelOutputError(
                    "the constraint allowed no token at this point", raw=stream.text
                )
            matcher.advance(token)
        if scorer is not None:
            scorer.chosen(logits, token)
        return token

    def ends(token: int) -> bool:
        """Take ``token`` (already advanced in the matcher); True when the output ends here."""
        if token in eog:
            return True
        generated.append(token)
        if lookup is not None:
            lookup.append(token)
        if counts is not None:
            counts[token] = counts.get(token, 0) + 1
        if scorer is not None:
            scorer.keep()
        return stream.feed(pieces[token]) or (matcher is not None and matcher.is_finished)

    batch = request.pending
    while True:
        if matcher is not None and len(generated) < request.max_tokens:
            for token in matcher.forced_tokens()[: request.max_tokens - len(generated)]:
                matcher.advance(token)
                if scorer is not None:
                    scorer.forced(token)
                if ends(token):
                    return generated, done
                batch.append(token)
        if len(generated) >= request.max_tokens:
            return generated, "length"
        draft = []
        if lookup is not None:
            # At most what the budget leaves after this step's own token.
            draft = lookup.draft(request.max_tokens - len(generated) - 1)
            if draft and matcher is not None:
                draft = draft[: grammar_accepts(matcher, draft)]
        if not draft:
            evaluate(batch)
            token = choose(next_logits())
            if ends(token):
                return generated, done
            batch = [token]
            continue
        assert verifier is not None
        logits_at = verifier.verify(batch, draft)
        for position in range(len(draft) + 1):
            token = choose(logits_at(position))
            if ends(token):
                return generated, done
            if position == len(draft) or token != draft[position]:
                verifier.rewind(len(draft) - position)  # the guesses from here on were wrong
                batch = [token]
                break
            if matcher is not None and matcher.forced_tokens():
                # Forced tokens come next: the top of the loop adds them without sampling.
                verifier.rewind(len(draft) - position - 1)
                batch = []
                break


def make_generation(
    request: DecodeRequest,
    *,
    generated: list[int],
    finish_reason: str,
    prompt_tokens: int,
    cached_tokens: int,
    started: float,
) -> Generation:
    text = request.stream.finish()
    return Generation(
        text=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=len(generated),
        cached_tokens=cached_tokens,
        finish_reason=finish_reason,
        seconds=time.perf_counter() - started,
        logprobs=token_logprobs(request, text),
    )


def token_logprobs(request: DecodeRequest, text: str) -> tuple[TokenLogprob, ...] | None:
    """``request.scores`` as ``TokenLogprob``s, without the tokens that begin after ``text``
    ends (those of a stop string that cut it)."""
    if request.scores is None:
        return None
    pieces = request.pieces

    def entry(token: int, logprob: float, top: Sequence[tuple[int, float]] = ()) -> TokenLogprob:
        data = bytes(pieces[token])
        return TokenLogprob(
            id=token,
            token=data.decode("utf-8", errors="replace"),
            bytes=data,
            logprob=logprob,
            top_logprobs=tuple(entry(i, lp) for i, lp in top),
        )

    length = len(text.encode("utf-8")) if request.stream.stopped else math.inf
    out, start = [], 0
    for token, logprob, top in request.scores:
        if start >= length:
            break
        start += len(pieces[token])
        out.append(entry(token, logprob, top))
    return tuple(out)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - float(np.max(logits))
    return shifted - np.log(np.exp(shifted).sum())


def score_continuations(
    prompt: list[int],
    continuations: Sequence[Sequence[int]],
    reuse: Callable[[list[int]], int],
    evaluate: Callable[[list[int]], None],
    next_logits: Callable[[], np.ndarray],
) -> list[float]:
    """The log-probability of each token sequence in ``continuations`` right after ``prompt``.

    ``reuse(tokens)`` keeps the cached prefix of ``tokens`` and returns its length (at most
    ``len(tokens) - 1``, so the last token is evaluated again for fresh logits). The prompt is
    evaluated once: every continuation's first token is read from that one distribution (a
    yes/no question costs the prompt and nothing more, and "Yes" and "No" are compared on the
    same logits), and a longer continuation evaluates only its own tokens after the prompt's
    cache.
    """
    cached = reuse(prompt)
    evaluate(prompt[cached:])
    after_prompt = log_softmax(next_logits())
    scores = []
    for continuation in continuations:
        if not continuation:
            scores.append(0.0)
            continue
        total = float(after_prompt[continuation[0]])
        for position in range(1, len(continuation)):
            if position == 1:  # back to the prompt (plus this first token), whatever came since
                context = [*prompt, continuation[0]]
                evaluate(context[reuse(context) :])
            else:
                evaluate([continuation[position - 1]])
            total += float(log_softmax(next_logits())[continuation[position]])
        scores.append(total)
    return scores
