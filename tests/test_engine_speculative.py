"""Prompt-lookup drafts in the shared decode loop: the same tokens, fewer forward passes.

The fake model's next token depends on everything in its KV cache, so a guessed token left in
the cache after the model refused it would change what comes next: these tests fail if the loop
rewinds wrongly, not only if it chooses wrongly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fncall.engine.decoding import DecodeRequest, TextStream, run_decode_loop
from fncall.engine.speculative import PromptLookup
from fncall.errors import UserError

EOS = 0
PIECES = [b"<eos>"] + [bytes([ord("a") + i]) for i in range(20)]  # 1 -> "a", 2 -> "b", ...
WRONG = 20  # what the model says once its cache holds something it did not choose


class CacheModel:
    """Greedy continuation ``target`` after ``prompt``, read off the whole KV cache."""

    def __init__(self, prompt: list[int], target: list[int]) -> None:
        self.prompt, self.target = prompt, target
        self.kv: list[int] = []
        self.passes = self.rewound = 0
        self.drafts: list[list[int]] = []

    def _logits_after(self, end: int) -> np.ndarray:
        said = self.kv[len(self.prompt) : end]
        if self.kv[: len(self.prompt)] != self.prompt or said != self.target[: len(said)]:
            token = WRONG
        else:
            token = self.target[len(said)] if len(said) < len(self.target) else EOS
        logits = np.zeros(len(PIECES), dtype=np.float32)
        logits[token] = 10.0
        logits[(token + 1) % len(PIECES)] = 9.0  # a runner-up, so masks matter
        return logits

    def evaluate(self, tokens: list[int]) -> None:
        self.kv += tokens
        self.passes += 1

    def logits(self) -> np.ndarray:
        return self._logits_after(len(self.kv))

    def verify(self, batch: list[int], draft: list[int]) -> Callable[[int], np.ndarray]:
        self.kv += [*batch, *draft]
        self.passes += 1
        self.drafts.append(list(draft))
        first = len(self.kv) - len(draft)
        return lambda i: self._logits_after(first + i)

    def rewind(self, count: int) -> None:
        del self.kv[len(self.kv) - count :]
        self.rewound += count


class OnlyTarget:
    """A matcher allowing exactly ``sequence`` then the end; it can check guesses (``accepts``)
    and forces the tokens at ``forced`` positions."""

    def __init__(self, sequence: list[int], forced: frozenset[int] = frozenset()) -> None:
        self.sequence, self.forced, self.pos = [*sequence, EOS], forced, 0
        self.checked: list[list[int]] = []

    def mask_logits(self, logits: np.ndarray) -> None:
        keep = logits[self.sequence[self.pos]]
        logits[:] = -np.inf
        logits[self.sequence[self.pos]] = keep

    def advance(self, token_id: int) -> None:
        assert token_id == self.sequence[self.pos], (token_id, self.pos)
        self.pos += 1

    def accepts(self, tokens: list[int]) -> int:
        self.checked.append(list(tokens))
        count = 0
        while count < len(tokens) and self.sequence[self.pos + count] == tokens[count]:
            count += 1
        return count

    def forced_tokens(self) -> list[int]:
        out, pos = [], self.pos
        while pos in self.forced:
            out.append(self.sequence[pos])
            pos += 1
        return out

    def prefer_closing(self, logits: np.ndarray) -> bool:
        return False

    @property
    def is_finished(self) -> bool:
        return self.pos == len(self.sequence)


# A prompt that holds most of the answer: a tool call copies its values from the request.
PROMPT = [1, 2, 3, 4, 5, 6, 9, 1, 2, 3, 7, 8, 9, 10, 11, 12, 13, 9]
TARGET = [7, 8, 9, 10, 11, 12, 14, 1, 2, 3, 4, 5, 6, 15, 7, 8, 9, 10, 11]


def decode(
    *,
    drafts: int,
    target: list[int] = TARGET,
    max_tokens: int = 40,
    temperature: float = 0.0,
    stop: tuple[str, ...] = (),
    matcher: OnlyTarget | None = None,
) -> tuple[list[int], str, str, CacheModel]:
    model = CacheModel(PROMPT, target)
    stream = TextStream(stop, None)
    request = DecodeRequest(
        pending=list(PROMPT),
        max_tokens=max_tokens,
        temperature=temperature,
        rng=np.random.default_rng(0),
        stream=stream,
        pieces=PIECES,
        eog=frozenset({EOS}),
        matcher=matcher,
        context=PROMPT,
        draft_tokens=drafts,
    )
    generated, finish = run_decode_loop(request, model.evaluate, model.logits, verifier=model)
    return generated, finish, stream.finish(), model


def test_drafts_give_the_same_tokens_in_fewer_passes() -> None:
    plain, plain_finish, _, plain_model = decode(drafts=0)
    drafted, finish, _, model = decode(drafts=4)
    assert plain == TARGET and plain_finish == "stop"
    assert (drafted, finish) == (plain, plain_finish)
    assert WRONG not in drafted  # no refused guess stayed in the cache
    assert plain_model.passes == len(TARGET) + 1  # one per token, and one that says EOS
    assert model.passes < plain_model.passes - 5
    assert model.drafts and all(1 <= len(d) <= 4 for d in model.drafts)


def test_a_wrong_guess_is_rewound_and_the_model_s_token_kept() -> None:
    # After 1 2 3 the prompt goes on with 4 (and 7), but the model says 9 here.
    target = [1, 2, 3, 9, 13, 9, 16]
    plain, *_ = decode(drafts=0, target=target)
    drafted, _, _, model = decode(drafts=4, target=target)
    assert drafted == plain == target
    assert model.rewound > 0  # a guess failed (after "1 2 3" the prompt went on with 4)
    assert model.kv[len(PROMPT) :][: len(target)] == target


@pytest.mark.parametrize("max_tokens", [1, 2, 5, 9])
def test_drafts_never_pass_the_token_budget(max_tokens: int) -> None:
    plain, plain_finish, _, _ = decode(drafts=0, max_tokens=max_tokens)
    drafted, finish, _, model = decode(drafts=4, max_tokens=max_tokens)
    assert (drafted, finish) == (plain, plain_finish) == (TARGET[:max_tokens], "length")
    assert all(len(d) < max_tokens for d in model.drafts)


def test_a_stop_string_inside_an_accepted_guess_ends_the_text_there() -> None:
    plain = decode(drafts=0, stop=("kl",))
    drafted = decode(drafts=4, stop=("kl",))
    assert plain[2] == drafted[2] == "ghij"
    assert plain[:2] == drafted[:2]


def test_the_grammar_trims_guesses_and_still_chooses_every_token() -> None:
    target = [1, 2, 3, 9, 13, 9, 16]
    matcher = OnlyTarget(target)
    drafted, finish, _, model = decode(drafts=4, target=target, matcher=matcher)
    assert (drafted, finish) == (target, "stop")
    assert matcher.checked and model.drafts  # guesses went to the grammar, some were evaluated
    assert model.rewound == 0  # only what it allows was: the guess of 4 after "1 2 3" was not


def test_forced_tokens_inside_a_guess_are_taken_as_the_grammar_forces_them() -> None:
    forced = frozenset({9, 10, 11})  # after "a b c d" come forced tokens
    plain, _, _, plain_model = decode(drafts=0, matcher=OnlyTarget(TARGET, forced))
    drafted, finish, _, model = decode(drafts=4, matcher=OnlyTarget(TARGET, forced))
    assert plain == drafted == TARGET and finish == "stop"
    assert model.passes < plain_model.passes


def test_sampling_is_never_drafted() -> None:
    _, _, _, model = decode(drafts=4, temperature=0.7)
    assert model.drafts == []


def test_lookup_guesses_from_the_latest_earlier_occurrence() -> None:
    lookup = PromptLookup([1, 2, 3, 9, 1, 2, 3, 4, 5, 1, 2, 3], max_draft=3)
    assert lookup.draft(10) == [4, 5, 1]  # "1 2 3" last came before "4 5 1"
    assert lookup.draft(1) == [4]
    assert lookup.draft(0) == []
    lookup.append(6)
    assert lookup.draft(10) == []  # "2 3 6" never occurred before
    assert PromptLookup([1, 2, 3], max_draft=4).draft(4) == []
    assert PromptLookup([1, 2, 7, 1, 2], max_draft=4).draft(4) == []  # two tokens are too few


def test_the_llama_engine_refuses_a_bad_draft_count(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("llama_cpp")
    from fncall.engine.llama_cpp import LlamaCppEngine

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    for bad in (-1, 2.5, True, "4"):
        with pytest.raises(UserError, match="draft_tokens must be an integer >= 0"):
            LlamaCppEngine(model, draft_tokens=bad)  # type: ignore[arg-type]
