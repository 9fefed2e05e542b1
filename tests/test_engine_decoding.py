"""The shared decode loop, on a fake backend: streaming, stop strings, constraints, sampling."""

from __future__ import annotations

import numpy as np
import pytest

from fncall.engine.decoding import (
    DecodeRequest,
    TextStream,
    check_options,
    log_softmax,
    run_decode_loop,
    sample_token,
    score_continuations,
)
from fncall.errors import ModelOutputError, UserError

# token id -> bytes; "é" is split across two tokens, "€" across three.
PIECES = [b"<eos>", b"a", b"b", b" ", b"\xc3", b"\xa9", b"\xe2", b"\x82", b"\xac", b"END", b"c"]
EOS = 0


class ScriptedBackend:
    """Prefers the next token of a script; records every evaluated batch."""

    def __init__(self, script: list[int]) -> None:
        self.script = list(script)
        self.batches: list[list[int]] = []
        self.step = 0

    def evaluate(self, tokens: list[int]) -> None:
        self.batches.append(list(tokens))

    def logits(self) -> np.ndarray:
        logits = np.zeros(len(PIECES), dtype=np.float32)
        token = self.script[min(self.step, len(self.script) - 1)]
        logits[token] = 10.0
        self.step += 1
        return logits


class FixedSequence:
    """A TokenMatcher allowing exactly one token sequence; ``forced_from`` on, it forces them."""

    def __init__(self, sequence: list[int], forced_from: int | None = None) -> None:
        self.sequence, self.pos, self.forced_from = sequence, 0, forced_from
        self.masked = 0

    def mask_logits(self, logits: np.ndarray) -> None:
        self.masked += 1
        keep = logits[self.sequence[self.pos]]
        logits[:] = -np.inf
        logits[self.sequence[self.pos]] = keep

    def advance(self, token_id: int) -> None:
        assert token_id == self.sequence[self.pos], (token_id, self.pos)
        self.pos += 1

    def forced_tokens(self) -> list[int]:
        if self.forced_from is not None and self.pos >= self.forced_from:
            return self.sequence[self.pos :]
        return []

    def prefer_closing(self, logits: np.ndarray) -> bool:
        return False  # cannot steer

    @property
    def is_finished(self) -> bool:
        return self.pos == len(self.sequence)


def _run(
    script: list[int],
    *,
    max_tokens: int = 20,
    stop: list[str] | None = None,
    matcher: FixedSequence | None = None,
    chunks: list[str] | None = None,
):
    backend = ScriptedBackend(script)
    stream = TextStream(stop or [], chunks.append if chunks is not None else None)
    request = DecodeRequest(
        pending=[1, 2],
        max_tokens=max_tokens,
        temperature=0.0,
        rng=np.random.default_rng(0),
        stream=stream,
        pieces=PIECES,
        eog=frozenset({EOS}),
        matcher=matcher,
    )
    generated, finish = run_decode_loop(request, backend.evaluate, backend.logits)
    return generated, finish, stream.finish(), backend


def test_greedy_until_eos_and_prompt_evaluated_first() -> None:
    generated, finish, text, backend = _run([1, 3, 2, EOS])
    assert (generated, finish, text) == ([1, 3, 2], "stop", "a b")
    assert backend.batches == [[1, 2], [1], [3], [2]]


def test_max_tokens_gives_length() -> None:
    generated, finish, text, _ = _run([1, 1, 1, 1, 1], max_tokens=3)
    assert (len(generated), finish, text) == (3, "length", "aaa")


def test_multibyte_characters_stream_whole() -> None:
    chunks: list[str] = []
    _, _, text, _ = _run([1, 4, 5, 6, 7, 8, 10, EOS], chunks=chunks)
    assert text == "aé€c"
    assert chunks == ["a", "é", "€", "c"]


def test_stop_string_is_cut_and_never_streamed() -> None:
    chunks: list[str] = []
    generated, finish, text, _ = _run([1, 2, 9, 10, EOS], stop=["bEND"], chunks=chunks)
    assert (text, finish) == ("a", "stop")
    assert "".join(chunks) == "a" and generated == [1, 2, 9]


def test_held_back_prefix_is_released_when_no_stop_follows() -> None:
    chunks: list[str] = []
    _, _, text, _ = _run([1, 2, 10, EOS], stop=["bEND"], chunks=chunks)
    assert text == "abc" and "".join(chunks) == "abc"
    assert chunks[:2] == ["a", "bc"]  # "b" waited: it could have begun "bEND"


def test_matcher_masks_and_finishes() -> None:
    matcher = FixedSequence([2, 10, 2])
    generated, finish, text, _ = _run([1, 1, 1, 1], matcher=matcher)
    assert (generated, finish, text) == ([2, 10, 2], "stop", "bcb")
    assert matcher.masked == 3


def test_forced_tokens_are_evaluated_in_one_batch_without_sampling() -> None:
    class ForcedMiddle(FixedSequence):
        def forced_tokens(self) -> list[int]:
            return [1, 3] if self.pos == 1 else []

    matcher = ForcedMiddle([2, 1, 3, 10, EOS])
    generated, finish, text, backend = _run([2, 10, 10, EOS], matcher=matcher)
    assert (generated, text, finish) == ([2, 1, 3, 10], "ba c", "stop")
    assert matcher.masked == 3  # 2, 10 and EOS were sampled; 1 and 3 were forced
    assert backend.batches == [[1, 2], [2, 1, 3], [10]]
    assert matcher.is_finished


def test_forced_tail_finishes_without_evaluation() -> None:
    matcher = FixedSequence([2, 1, 3], forced_from=1)
    generated, finish, text, backend = _run([2, 2], matcher=matcher)
    assert (generated, text, finish) == ([2, 1, 3], "ba ", "stop")
    assert backend.batches == [[1, 2]]


def test_forced_tokens_at_start_join_the_prompt_batch() -> None:
    class ForcedPrefix(FixedSequence):
        def forced_tokens(self) -> list[int]:
            return [1, 3] if self.pos == 0 else []

    matcher = ForcedPrefix([1, 3, 2])
    generated, _, text, backend = _run([2, 2], matcher=matcher)
    assert text == "a b" and generated == [1, 3, 2]
    assert backend.batches == [[1, 2, 1, 3]]
    assert matcher.masked == 1


def test_constraint_that_allows_nothing_is_an_error() -> None:
    class Nothing(FixedSequence):
        def mask_logits(self, logits: np.ndarray) -> None:
            logits[:] = -np.inf

    with pytest.raises(ModelOutputError, match="allowed no token"):
        _run([1], matcher=Nothing([1]))


def test_sampling_is_seeded_and_respects_masks() -> None:
    logits = np.array([0.0, 1.0, -np.inf, 0.5], dtype=np.float32)
    draws = [sample_token(logits, 1.0, np.random.default_rng(7)) for _ in range(3)]
    assert len(set(draws)) == 1
    rng = np.random.default_rng(0)
    many = {sample_token(logits, 2.0, rng) for _ in range(300)}
    assert many == {0, 1, 3}
    assert sample_token(logits, 0.0, rng) == 1


def test_check_options_names_the_bad_value() -> None:
    assert check_options(5, 0.0, "x") == ["x"]
    with pytest.raises(UserError, match="max_tokens"):
        check_options(-1, 0.0, ())
    with pytest.raises(UserError, match="temperature"):
        check_options(1, -0.5, ())
    with pytest.raises(UserError, match="non-empty"):
        check_options(1, 0.0, ["", "ok"])


def test_default_threads_follows_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from fncall.engine.llama_cpp import default_threads

    monkeypatch.setenv("FNCALL_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("FNCALL_THREADS", "many")
    with pytest.raises(UserError, match="FNCALL_THREADS"):
        default_threads()
    monkeypatch.delenv("FNCALL_THREADS")
    assert default_threads() >= 1


def test_top_p_draws_from_the_smallest_set_reaching_it() -> None:
    # softmax: 0.644, 0.237, 0.087, 0.032; the first two reach 0.8, the first alone 0.6
    logits = np.array([2.0, 1.0, 0.0, -1.0], dtype=np.float32)
    rng = np.random.default_rng(11)
    assert {sample_token(logits, 1.0, rng, top_p=0.8) for _ in range(400)} == {0, 1}
    assert {sample_token(logits, 1.0, rng, top_p=0.6) for _ in range(100)} == {0}
    assert {sample_token(logits, 1.0, rng, top_p=1.0) for _ in range(400)} == {0, 1, 2, 3}
    masked = np.array([-np.inf, 1.0, 0.0, -np.inf], dtype=np.float32)
    assert {sample_token(masked, 1.0, rng, top_p=0.5) for _ in range(100)} == {1}
    assert sample_token(logits, 0.0, rng, top_p=0.1) == 0  # greedy whatever top_p keeps


def test_check_options_refuses_a_bad_top_p() -> None:
    assert check_options(5, 0.7, (), top_p=0.9) == []
    for bad in (0.0, 1.5, -1, "0.9", float("nan")):
        with pytest.raises(UserError, match="top_p"):
            check_options(5, 0.7, (), top_p=bad)


class HistoryModel:
    """Logits that depend on the whole token history, a KV cache that ``reuse`` truncates, and
    a count of every token evaluated: a stand-in for a backend's ``Engine.score`` plumbing."""

    def __init__(self) -> None:
        self.live: list[int] = []
        self.evaluated = 0

    def reuse(self, tokens: list[int]) -> int:
        common = 0
        while common < min(len(tokens), len(self.live)) and tokens[common] == self.live[common]:
            common += 1
        common = min(common, len(tokens) - 1)
        del self.live[common:]
        return common

    def evaluate(self, tokens: list[int]) -> None:
        self.live += tokens
        self.evaluated += len(tokens)

    def logits(self) -> np.ndarray:
        return self.logits_after(self.live)

    @staticmethod
    def logits_after(history: list[int]) -> np.ndarray:
        rng = np.random.default_rng(abs(hash(tuple(history))) % 2**32)
        return rng.normal(size=len(PIECES)).astype(np.float32)


def test_scoring_evaluates_the_prompt_once_and_each_continuation_its_own_tokens() -> None:
    model = HistoryModel()
    prompt = [1, 2, 3, 1, 2, 3, 10]
    continuations = [[1], [2], [3, 1, 2], [3, 1], [10]]
    scores = score_continuations(prompt, continuations, model.reuse, model.evaluate, model.logits)
    for continuation, score in zip(continuations, scores, strict=True):
        expected = sum(
            float(log_softmax(model.logits_after(prompt + continuation[:i]))[token])
            for i, token in enumerate(continuation)
        )
        assert score == pytest.approx(expected, abs=1e-9)
    # Single tokens cost nothing past the prompt; [3, 1, 2] evaluates 3 and 1, [3, 1] evaluates
    # 3 (the live context held [3, 1] after it; the first token is evaluated again).
    assert model.evaluated == len(prompt) + 2 + 1
    # Scoring again reuses the prompt's cache: only its last token is evaluated again.
    model.evaluated = 0
    score_continuations(prompt, [[1], [2]], model.reuse, model.evaluate, model.logits)
    assert model.evaluated == 1
