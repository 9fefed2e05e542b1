"""The llama.cpp engine on the real embedded models (few tokens each: these stay quick)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

from fncall.engine import load_engine
from fncall.engine.base import Engine
from fncall.engine.llama_cpp import LlamaCppEngine
from fncall.errors import UserError
from fncall.models import FAST_MODEL, install_model

pytestmark = pytest.mark.model

SYSTEM = (
    "<|im_start|>system\nYou are a helpful assistant. You may call these tools:\n"
    + "\n".join(
        f'{{"name": "tool_{i}", "description": "Does thing number {i}.", '
        f'"parameters": {{"type": "object", "properties": {{"x": {{"type": "integer"}}}}}}}}'
        for i in range(12)
    )
    + "<|im_end|>\n"
)


def chat(question: str) -> str:
    return f"{SYSTEM}<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


class SequenceMatcher:
    """A TokenMatcher that allows exactly ``tokens``; from ``forced_from`` on it forces them."""

    def __init__(self, tokens: list[int], forced_from: int | None) -> None:
        self.tokens, self.forced_from = tokens, forced_from
        self.pos = 0
        self.sampled = 0

    def mask_logits(self, logits: np.ndarray) -> None:
        self.sampled += 1
        keep = logits[self.tokens[self.pos]]
        logits[:] = -np.inf
        logits[self.tokens[self.pos]] = keep

    def advance(self, token_id: int) -> None:
        if token_id != self.tokens[self.pos]:
            raise ValueError(f"token {token_id} not allowed at {self.pos}")
        self.pos += 1

    def forced_tokens(self) -> list[int]:
        if self.forced_from is not None and self.pos >= self.forced_from:
            return self.tokens[self.pos :]
        return []

    def prefer_closing(self, logits: np.ndarray) -> bool:
        return False

    @property
    def is_finished(self) -> bool:
        return self.pos == len(self.tokens)


class ForceText:
    """A Constraint whose matcher allows one fixed token sequence."""

    def __init__(self, tokens: list[int], forced_from: int | None = None) -> None:
        self.tokens, self.forced_from = tokens, forced_from
        self.matchers: list[SequenceMatcher] = []

    def matcher(self, vocabulary: Sequence[bytes], eos_token_ids: Sequence[int]) -> SequenceMatcher:
        assert eos_token_ids
        matcher = SequenceMatcher(self.tokens, self.forced_from)
        self.matchers.append(matcher)
        return matcher


@pytest.fixture(scope="module")
def engine() -> LlamaCppEngine:
    return LlamaCppEngine(install_model(FAST_MODEL, progress=False), n_ctx=2048, seed=0)


def test_loads_with_template_vocabulary_and_eos(engine: LlamaCppEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.chat_template is not None and "tools" in engine.chat_template
    vocab = engine.vocabulary()
    assert len(vocab) >= 151_000
    im_end = engine.tokenize("<|im_end|>")
    assert len(im_end) == 1 and vocab[im_end[0]] == b"<|im_end|>"
    assert im_end[0] in engine.eos_token_ids
    hello = engine.tokenize("Hello world")
    assert b"".join(vocab[t] for t in hello) == b"Hello world"


def test_greedy_is_deterministic_and_second_call_hits_the_cache(engine: LlamaCppEngine) -> None:
    first = engine.generate(chat("Say hi."), max_tokens=6)
    second = engine.generate(chat("Say hi."), max_tokens=6)
    assert first.text == second.text and first.text
    assert second.prompt_tokens == first.prompt_tokens
    assert second.cached_tokens == second.prompt_tokens - 1


def test_shared_prefix_is_cached_and_gives_the_same_answer(engine: LlamaCppEngine) -> None:
    engine.generate(chat("What is 2+2?"), max_tokens=1)
    warm = engine.generate(chat("Name a colour."), max_tokens=5)
    prefix = len(engine.tokenize(SYSTEM))
    assert prefix <= warm.cached_tokens < warm.prompt_tokens
    # Another prompt replaces the live context; the tool prefix comes back from a saved state.
    saved = engine.prefix_cache.hits
    engine.generate("Unrelated text that shares nothing.", max_tokens=1)
    again = engine.generate(chat("Name a colour."), max_tokens=5)
    assert engine.prefix_cache.hits == saved + 1
    assert again.cached_tokens == again.prompt_tokens - 1 and again.text == warm.text


def test_without_saved_prefixes_a_replaced_prefix_is_evaluated_again() -> None:
    engine = LlamaCppEngine(install_model(FAST_MODEL, progress=False), prefix_cache_mb=0)
    warm = engine.generate(chat("Name a colour."), max_tokens=5)
    engine.generate("Unrelated text that shares nothing.", max_tokens=1)
    cold = engine.generate(chat("Name a colour."), max_tokens=5)
    assert cold.cached_tokens < 5 and len(engine.prefix_cache) == 0
    assert cold.text == warm.text
    engine.close()


def test_alternating_tool_sets_each_find_their_prefix(engine: LlamaCppEngine) -> None:
    other = SYSTEM.replace("Does thing number", "Makes object number")

    def other_chat(question: str) -> str:
        return chat(question).replace(SYSTEM, other)

    prefixes = {chat: len(engine.tokenize(SYSTEM)), other_chat: len(engine.tokenize(other))}
    for render in (chat, other_chat):
        engine.generate(render("Say hi."), max_tokens=2)
    for question in ("Name a fruit.", "Name a city."):
        for render, prefix in prefixes.items():
            out = engine.generate(render(question), max_tokens=2)
            assert out.cached_tokens >= prefix, (question, out)


def test_streaming_matches_text_and_max_tokens_gives_length(engine: LlamaCppEngine) -> None:
    chunks: list[str] = []
    out = engine.generate(chat("Count from 1 to 20."), max_tokens=7, on_text=chunks.append)
    assert "".join(chunks) == out.text
    assert (out.completion_tokens, out.finish_reason) == (7, "length")


def test_constraint_masks_every_token_and_finishes(engine: LlamaCppEngine) -> None:
    target = '{"name": "tool_3", "arguments": {"x": 42}}'
    constraint = ForceText(engine.tokenize(target))
    out = engine.generate(chat("Write a poem."), max_tokens=50, constraint=constraint)
    assert out.text == target and out.finish_reason == "stop"
    assert constraint.matchers[0].sampled == len(constraint.tokens)


def test_forced_tokens_skip_sampling(engine: LlamaCppEngine) -> None:
    target = '{"name": "tool_3", "arguments": {"x": 42}}'
    constraint = ForceText(engine.tokenize(target), forced_from=1)
    out = engine.generate(chat("Write a poem."), max_tokens=50, constraint=constraint)
    assert out.text == target
    assert constraint.matchers[0].sampled == 1
    assert out.completion_tokens == len(constraint.tokens)


def test_multibyte_output_streams_whole_characters(engine: LlamaCppEngine) -> None:
    target = "日本語 ✓ 🙂 é"
    tokens = engine.tokenize(target)
    assert len(tokens) > 4
    chunks: list[str] = []
    out = engine.generate(
        chat("hi"), max_tokens=40, constraint=ForceText(tokens), on_text=chunks.append
    )
    assert out.text == target and "".join(chunks) == target
    assert all("\ufffd" not in chunk for chunk in chunks)


def test_stop_string_cuts_the_text(engine: LlamaCppEngine) -> None:
    tokens = engine.tokenize("alpha beta gamma delta")
    out = engine.generate(
        chat("hi"), max_tokens=40, constraint=ForceText(tokens), stop=["gamma", "zeta"]
    )
    assert out.text == "alpha beta " and out.finish_reason == "stop"


def test_seeded_sampling_is_reproducible(engine: LlamaCppEngine) -> None:
    a = engine.generate(chat("Tell me a word."), max_tokens=6, temperature=1.0, seed=123)
    b = engine.generate(chat("Tell me a word."), max_tokens=6, temperature=1.0, seed=123)
    assert a.text == b.text


def test_bad_arguments_are_user_errors(engine: LlamaCppEngine) -> None:
    with pytest.raises(UserError, match="temperature"):
        engine.generate("x", temperature=-1)
    with pytest.raises(UserError, match="context holds"):
        engine.generate("word " * 3000, max_tokens=1)
    with pytest.raises(UserError, match="does not exist"):
        LlamaCppEngine("/nonexistent/model.gguf")


def test_smollm2_loads_through_load_engine() -> None:
    engine = load_engine("smollm2-135m", n_ctx=512)
    assert isinstance(engine, LlamaCppEngine) and engine.name == "smollm2-135m"
    assert engine.chat_template
    prompt = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    first = engine.generate(prompt, max_tokens=6)
    second = engine.generate(prompt, max_tokens=6)
    assert first.text and first.text == second.text
    assert second.cached_tokens == second.prompt_tokens - 1


def test_score_agrees_with_greedy_and_shares_the_prompt_cache(engine: LlamaCppEngine) -> None:
    prompt = chat("Is Paris the capital of France? Answer Yes or No.")
    greedy = engine.generate(prompt, max_tokens=1)
    yes, no, call = engine.score(prompt, [greedy.text, "Maybe", "<tool_call>"])
    assert yes > no and yes > call and yes <= 0
    # The same text as one token and as a longer continuation: the longer one costs more.
    longer = engine.score(prompt, [greedy.text + " certainly not"])[0]
    assert longer < yes
    # Scoring leaves the prompt cached, and generation after it is unchanged.
    again = engine.generate(prompt, max_tokens=1)
    assert again.text == greedy.text and again.cached_tokens == again.prompt_tokens - 1
    assert engine.score(prompt, [greedy.text])[0] == pytest.approx(yes, abs=1e-3)


def test_drafted_greedy_copy_keeps_the_text_and_the_cache(engine: LlamaCppEngine) -> None:
    """Guessed tokens (``fncall.engine.speculative``) on the real model: a copying answer is
    guessed from the prompt, the kept text is the undrafted one, and refused guesses leave no
    trace in the KV cache the next request reuses."""
    prompt = chat(
        "Repeat this sentence exactly: the quick brown fox jumps over the lazy dog by the "
        "old river bank, the quick brown fox jumps over the lazy dog again."
    )
    plain = engine.generate(prompt, max_tokens=32)
    engine.draft_tokens = 2
    try:
        before = engine.drafted
        drafted = engine.generate(prompt, max_tokens=32)
        assert engine.drafted > before  # guesses were evaluated
        assert drafted.text == plain.text and drafted.completion_tokens == plain.completion_tokens
        again = engine.generate(prompt + drafted.text[:20], max_tokens=8)
        assert again.cached_tokens > plain.prompt_tokens  # the kept tokens' KV is reused ...
        assert plain.text[20:].startswith(again.text.strip()[:10])  # ... and is right
    finally:
        engine.draft_tokens = 0


def test_logprobs_are_finite_and_greedy_takes_the_top_alternative(engine: LlamaCppEngine) -> None:
    """Issue 21: ``top_logprobs`` on the real model; the grammar-free greedy token is the
    likeliest, so it heads its own alternatives, and a bias against it changes the choice."""
    plain = engine.generate(chat("Say hi."), max_tokens=4, top_logprobs=3)
    assert plain.logprobs is not None and len(plain.logprobs) == plain.completion_tokens
    for token in plain.logprobs:
        assert np.isfinite(token.logprob) and token.logprob <= 0
        assert len(token.top_logprobs) == 3
        assert token.top_logprobs[0].id == token.id
        assert token.top_logprobs[0].logprob == pytest.approx(token.logprob)
        assert sum(np.exp(t.logprob) for t in token.top_logprobs) <= 1 + 1e-6
    assert b"".join(t.bytes for t in plain.logprobs).decode() == plain.text
    first = plain.logprobs[0]
    biased = engine.generate(
        chat("Say hi."), max_tokens=1, logit_bias={first.id: -100}, top_logprobs=0
    )
    assert biased.logprobs and biased.logprobs[0].id != first.id
    with pytest.raises(UserError, match="logit_bias: token id"):
        engine.generate(chat("Say hi."), max_tokens=1, logit_bias={len(engine.vocabulary()): 1})


def test_min_p_near_one_samples_the_greedy_tokens(engine: LlamaCppEngine) -> None:
    """Issue 21: min_p 0.99 keeps only the likeliest token (no other is within 1% of it), so
    sampling at temperature 1 with a fixed seed gives the greedy tokens."""
    prompt = chat("Name a colour.")
    greedy = engine.generate(prompt, max_tokens=4)
    plain = engine.generate(prompt, max_tokens=4, temperature=1.0, seed=1)
    assert plain.text != greedy.text  # this seed's draws leave the greedy path without min_p
    sampled = engine.generate(prompt, max_tokens=4, temperature=1.0, seed=1, min_p=0.99)
    assert sampled.text == greedy.text
    with pytest.raises(UserError, match="min_p: must be a number from 0 to 1"):
        engine.generate(prompt, max_tokens=1, temperature=1.0, min_p=1.5)


def test_the_judge_reads_the_drafts_first_token_probability(engine: LlamaCppEngine) -> None:
    """``Judge(first_turn_question="unsure")`` on the real model: the probability llama.cpp gave
    the draft's first token reaches the decision (the same as a caller asking for
    log-probabilities sees), a named draft is asked about only when it is below ``sure``, and
    the turn carries no log-probabilities its caller did not ask for."""
    from fncall.judge import Judge
    from fncall.pipeline import LocalChat
    from fncall.types import Tool

    weather = Tool(
        name="get_weather",
        description="Get the current weather in a city.",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    )
    model = LocalChat(engine, judge=Judge(first_turn_question="unsure"))
    question = "What is the weather in Paris right now?"
    turn = model.complete(question, [weather])
    decision = turn.decision
    assert decision is not None and decision.confidence is not None, turn
    assert 0 < decision.confidence <= 1 and turn.logprobs is None
    assert decision.question is (decision.confidence < Judge().sure)
    # Asked again, the prompt is cached and its last token evaluated alone, not in a batch:
    # llama.cpp's logits then differ a little (the same greedy draft, a probability a few
    # hundredths away), so the two are compared within 0.1.
    shown = model.complete(question, [weather], top_logprobs=1)
    assert shown.logprobs is not None
    assert [(c.name, c.arguments) for c in shown.tool_calls] == [
        (c.name, c.arguments) for c in turn.tool_calls
    ]
    assert np.exp(shown.logprobs[0].logprob) == pytest.approx(decision.confidence, abs=0.1)
