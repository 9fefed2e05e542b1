"""``min_p`` (issue 21): vLLM's and llama.cpp's sampling filter, in the shared decode loop, the
engines, ``LocalChat``, ``RemoteChat`` and the chat completions server.

A token is kept when its probability (after temperature) is at least ``min_p`` times the
likeliest token's; 0 is off; greedy decoding is unaffected.
"""

from __future__ import annotations

import math
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest

from fncall.engine.base import Generation
from fncall.engine.decoding import (
    DecodeRequest,
    TextStream,
    check_options,
    run_decode_loop,
    sample_token,
)
from fncall.engine.remote import RemoteChat
from fncall.engine.scripted import ScriptedChat, ScriptedEngine
from fncall.errors import UserError
from fncall.pipeline import LocalChat
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer

# Probabilities relative to the likeliest token (temperature 1): 1, 0.31, 0.29, 0.05.
RATIOS = [1.0, 0.31, 0.29, 0.05]
LOGITS = np.log(np.array(RATIOS)).astype(np.float32)
DRAWS = 2000
MODEL = "scripted-test"
ASK = [{"role": "user", "content": "Weather in Paris?"}]


def drawn(logits: np.ndarray, *, seed: int = 0, temperature: float = 1.0, **cut: float) -> set[int]:
    rng = np.random.default_rng(seed)
    return {sample_token(logits.copy(), temperature, rng, **cut) for _ in range(DRAWS)}


# -- the filter ----------------------------------------------------------------------------------


def test_keeps_exactly_the_tokens_at_least_min_p_times_the_likeliest() -> None:
    # 0.31 is just above the cut at 0.3 and drawn (with probability 0.31 / 1.31 per draw);
    # 0.29 is just below it and never drawn in 2,000 draws.
    assert drawn(LOGITS, min_p=0.3) == {0, 1}
    assert drawn(LOGITS, min_p=0.28) == {0, 1, 2}
    assert drawn(LOGITS, min_p=0.32) == {0}
    assert drawn(LOGITS, min_p=1.0) == {0}  # only the likeliest token
    # p >= min_p * p_max: a token exactly at the cut is kept (here a tie with the likeliest)
    tie = np.array([0.0, 0.0, -1.0], dtype=np.float32)
    assert drawn(tie, min_p=1.0) == {0, 1}


def test_kept_tokens_keep_their_relative_probabilities() -> None:
    rng = np.random.default_rng(1)
    draws = [sample_token(LOGITS.copy(), 1.0, rng, min_p=0.3) for _ in range(DRAWS)]
    share = draws.count(1) / DRAWS
    assert share == pytest.approx(0.31 / 1.31, abs=0.03)


def test_the_cut_is_on_the_probabilities_after_temperature() -> None:
    # At temperature 0.5 the ratios are squared: 0.0961, 0.0841, 0.0025.
    assert drawn(LOGITS, temperature=0.5, min_p=0.09) == {0, 1}
    assert drawn(LOGITS, temperature=0.5, min_p=0.08) == {0, 1, 2}


def test_zero_is_no_filter() -> None:
    for seed in range(3):
        rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
        plain = [sample_token(LOGITS.copy(), 1.0, rng_a) for _ in range(300)]
        off = [sample_token(LOGITS.copy(), 1.0, rng_b, min_p=0.0) for _ in range(300)]
        assert plain == off
    assert drawn(LOGITS, min_p=0.0) == {0, 1, 2, 3}


def test_greedy_is_unaffected() -> None:
    rng = np.random.default_rng(0)
    for min_p in (0.0, 0.5, 1.0):
        assert sample_token(LOGITS.copy(), 0.0, rng, min_p=min_p) == 0


def test_min_p_comes_before_top_p() -> None:
    """vLLM's order: top_p's mass is counted over the tokens min_p kept. min_p 0.3 keeps
    tokens 0 and 1 (weights 1 and 0.31 of 1.31), where token 0 alone holds 0.763: top_p 0.76
    stops at it. Over all four tokens (top_p first, as llama.cpp does) token 0 holds only
    1 / 1.65 = 0.606, and top_p 0.76 keeps token 1 too."""
    assert drawn(LOGITS, min_p=0.3, top_p=0.8) == {0, 1}
    assert drawn(LOGITS, min_p=0.3, top_p=0.76) == {0}
    assert drawn(LOGITS, top_p=0.76) == {0, 1}


# -- in the decode loop ----------------------------------------------------------------------------

PIECES = [b"<eos>", b"a", b"b", b"c", b"d"]
LOOP_LOGITS = np.array([-50.0, *np.log(RATIOS)], dtype=np.float32)  # "a" likeliest, eos never


class Allowed:
    """A matcher allowing the token ids in ``allowed`` at every step; never finished."""

    def __init__(self, allowed: set[int]) -> None:
        self.allowed = allowed

    def mask_logits(self, logits: np.ndarray) -> None:
        for token in range(len(logits)):
            if token not in self.allowed:
                logits[token] = -np.inf

    def advance(self, token_id: int) -> None:
        assert token_id in self.allowed

    def forced_tokens(self) -> list[int]:
        return []

    def prefer_closing(self, logits: np.ndarray) -> bool:
        return False

    @property
    def is_finished(self) -> bool:
        return False


def loop(*, min_p: float, matcher: Any = None, temperature: float = 1.0) -> list[int]:
    request = DecodeRequest(
        pending=[1],
        max_tokens=400,
        temperature=temperature,
        rng=np.random.default_rng(7),
        stream=TextStream((), None),
        pieces=PIECES,
        eog=frozenset({0}),
        matcher=matcher,
        min_p=min_p,
    )
    generated, finish = run_decode_loop(request, lambda tokens: None, LOOP_LOGITS.copy)
    assert finish == "length"
    return generated


def test_the_loop_applies_min_p() -> None:
    assert set(loop(min_p=0.0)) == {1, 2, 3, 4}
    assert set(loop(min_p=0.3)) == {1, 2}
    assert set(loop(min_p=0.9, temperature=0.0)) == {1}


def test_min_p_composes_with_a_grammar_mask() -> None:
    """The mask comes first: min_p is relative to the likeliest token the grammar allows, and a
    masked token is never drawn however likely the model finds it."""
    # "a" (the model's likeliest) is forbidden; of "b" 0.31, "c" 0.29, "d" 0.05 the cut at
    # 0.5 x 0.31 keeps "b" and "c".
    assert set(loop(min_p=0.5, matcher=Allowed({2, 3, 4}))) == {2, 3}
    assert set(loop(min_p=1.0, matcher=Allowed({3, 4}))) == {3}
    assert set(loop(min_p=0.1, matcher=Allowed({1, 4}))) == {1}  # "d" is 0.05 of "a"


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-0.1, 1.5, "x", True, math.nan, None])
def test_validation_names_the_field_and_the_range(bad: Any) -> None:
    with pytest.raises(UserError, match=r"^min_p: must be a number from 0 to 1") as raised:
        check_options(5, 0.7, (), min_p=bad)
    assert repr(bad) in str(raised.value)
    with pytest.raises(UserError, match=r"^min_p: "):
        ScriptedEngine(["x"]).generate("p", min_p=bad)


def test_the_range_ends_are_accepted() -> None:
    for good in (0, 0.0, 0.05, 1, 1.0):
        assert check_options(5, 0.7, (), min_p=good) == []


# -- engines and chat models ------------------------------------------------------------------


def test_scripted_engine_records_min_p() -> None:
    engine = ScriptedEngine(["one", "two"])
    engine.generate("p", temperature=0.7, min_p=0.05)
    engine.generate("p")
    assert engine.requests[0].min_p == 0.05 and engine.requests[1].min_p == 0.0


def test_local_chat_passes_min_p_only_when_given() -> None:
    engine = ScriptedEngine(["one", "two"])
    chat = LocalChat(engine, format="json", judge=None)
    chat.complete("hello", temperature=0.8, min_p=0.1)
    chat.complete("hello")
    assert [r.min_p for r in engine.requests] == [0.1, 0.0]


class OldEngine(ScriptedEngine):
    """An Engine written before min_p existed."""

    def generate(  # type: ignore[override]
        self,
        prompt: str,
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Any = (),
        seed: int | None = None,
        constraint: Any = None,
        on_text: Any = None,
        top_p: float = 1.0,
    ) -> Generation:
        return super().generate(
            prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop,
            seed=seed,
            constraint=constraint,
            on_text=on_text,
            top_p=top_p,
        )


def test_an_engine_without_the_keyword_refuses_min_p_by_name() -> None:
    chat = LocalChat(OldEngine(["fine"]), format="json", judge=None)
    with pytest.raises(UserError, match="min_p: the engine 'scripted' does not support it"):
        chat.complete("hello", min_p=0.1)
    assert chat.complete("hello").content == "fine"


def test_transformers_engine_min_p_one_is_greedy() -> None:
    """A tiny random Llama (as in tests/test_engine_transformers.py): min_p 1 keeps only the
    likeliest token, so sampling at a high temperature gives the greedy text."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from fncall.engine.transformers import TransformersEngine
    from test_engine_transformers import tiny_llama

    model, tokenizer = tiny_llama()
    engine = TransformersEngine(model, tokenizer=tokenizer, device="cpu")
    prompt = "<|user|>hello<|assistant|>"
    greedy = engine.generate(prompt, max_tokens=6)
    sampled = [engine.generate(prompt, max_tokens=6, temperature=5.0, seed=s) for s in range(3)]
    kept = engine.generate(prompt, max_tokens=6, temperature=5.0, seed=0, min_p=1.0)
    assert kept.text == greedy.text
    assert any(s.text != greedy.text for s in sampled)  # the temperature alone would change it
    with pytest.raises(UserError, match="min_p: must be a number from 0 to 1"):
        engine.generate(prompt, max_tokens=1, temperature=1.0, min_p=2)


def test_remote_chat_forwards_min_p_in_the_body() -> None:
    remote = RemoteChat("http://127.0.0.1:1/v1", "m", min_p=0.05, top_p=0.9)
    body = remote._request("hi", (), None, True, {})
    # The openai client has no min_p keyword: extra_body puts it at the body's top level.
    assert body["extra_body"] == {"min_p": 0.05} and "min_p" not in body
    assert body["top_p"] == 0.9
    override = remote._request("hi", (), None, True, {"min_p": 0.2})
    assert override["extra_body"] == {"min_p": 0.2}
    assert "extra_body" not in RemoteChat("http://127.0.0.1:1/v1", "m")._request(
        "hi", (), None, True, {}
    )


def test_remote_chat_sends_min_p_over_http_to_an_openai_compatible_server() -> None:
    """End to end: RemoteChat -> the openai client -> HTTP -> this project's server (which
    reads ``min_p`` from the top level of the body, as vLLM does) -> the model behind it."""
    model = ScriptedChat(["ok"])
    with BackgroundServer(create_app(model, model_name=MODEL)) as server:
        remote = RemoteChat(server.base_url + "/v1", MODEL)
        turn = remote.complete("hi", temperature=0.7, min_p=0.1)
    assert turn.content == "ok"
    assert model.requests[0].options == {"temperature": 0.7, "min_p": 0.1}


# -- the server ------------------------------------------------------------------------------------


def post(server: BackgroundServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.base_url + "/v1/chat/completions", json=body, timeout=10)


def test_server_passes_min_p_to_the_model_when_it_can_change_the_answer() -> None:
    model = ScriptedChat(["a", "b", "c", "d"])
    with BackgroundServer(create_app(model, model_name=MODEL)) as server:
        sampled = post(server, {"model": MODEL, "messages": ASK, "temperature": 0.7, "min_p": 0.1})
        default_temperature = post(server, {"model": MODEL, "messages": ASK, "min_p": 0.2})
        off = post(server, {"model": MODEL, "messages": ASK, "temperature": 0.7, "min_p": 0})
        greedy = post(server, {"model": MODEL, "messages": ASK, "temperature": 0, "min_p": 0.5})
    assert [r.status_code for r in (sampled, default_temperature, off, greedy)] == [200] * 4
    assert sampled.json()["choices"][0]["message"]["content"] == "a"
    assert [r.options for r in model.requests] == [
        {"temperature": 0.7, "min_p": 0.1},
        {"min_p": 0.2},
        {"temperature": 0.7},  # 0 is off
        {"temperature": 0},  # greedy keeps the likeliest token whatever min_p says
    ]


def test_server_threads_min_p_to_a_local_engine_streamed_too() -> None:
    engine = ScriptedEngine(["Sunny.", "Sunny."])
    chat = LocalChat(engine, format="json", judge=None)
    with BackgroundServer(create_app(chat, model_name=MODEL)) as server:
        for stream in (False, True):
            body = {"model": MODEL, "messages": ASK, "stream": stream}
            response = post(server, {**body, "temperature": 0.9, "min_p": 0.05})
            assert response.status_code == 200, response.text
    assert [r.min_p for r in engine.requests] == [0.05, 0.05]
    assert [r.temperature for r in engine.requests] == [0.9, 0.9]


@pytest.mark.parametrize("bad", [2.0, -0.5, "x"])
def test_server_refuses_an_out_of_range_min_p_by_name(bad: Any) -> None:
    model = ScriptedChat(["unused"])
    with BackgroundServer(create_app(model, model_name=MODEL)) as server:
        for stream in (False, True):
            body = {"model": MODEL, "messages": ASK, "stream": stream, "min_p": bad}
            response = post(server, {**body, "temperature": 0.7})
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["param"] == "min_p", error
    assert model.requests == []


def test_responses_api_has_no_min_p() -> None:
    model = ScriptedChat(["unused"])
    with BackgroundServer(create_app(model, model_name=MODEL)) as server:
        response = httpx.post(
            server.base_url + "/v1/responses",
            json={"model": MODEL, "input": "hi", "min_p": 0.1},
            timeout=10,
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "min_p"
