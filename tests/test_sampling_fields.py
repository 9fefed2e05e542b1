"""OpenAI's logit_bias, presence/frequency penalties and logprobs (issue 21, "Sampling and
request fields"): in the shared decode loop on fake backends, through ``LocalChat``, and through
the real server with a scripted engine underneath."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import numpy as np
import openai
import pytest

from conftest import OldEngine
from fncall.engine.base import Generation, TokenLogprob
from fncall.engine.decoding import (
    DecodeRequest,
    TextStream,
    check_sampling,
    log_softmax,
    run_decode_loop,
    token_logprobs,
)
from fncall.engine.remote import RemoteChat
from fncall.engine.scripted import ScriptedChat, ScriptedEngine
from fncall.errors import UserError
from fncall.pipeline import LocalChat
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer

EOS = 0
PIECES = [b"<eos>", b"a", b"b", b"c", b"d", b"e", b"f"]  # 1 -> "a", 2 -> "b", ...
# Fixed logits (the same at every step), close enough that penalties reorder them.
LOGITS = np.array([-5.0, 3.0, 2.63, 2.21, 1.07, 0.53, -1.0], dtype=np.float32)


class FixedModel:
    """The same logits after every token; records what was evaluated."""

    def __init__(self, logits: np.ndarray = LOGITS) -> None:
        self.base = logits
        self.evaluated: list[int] = []

    def evaluate(self, tokens: list[int]) -> None:
        self.evaluated += tokens

    def logits(self) -> np.ndarray:
        return self.base.copy()  # the loop modifies them in place


class Allowed:
    """A matcher allowing the token ids in ``allowed`` at every step (``forced``: ids forced
    at those positions); never finished, so the budget ends the output."""

    def __init__(self, allowed: set[int], forced: dict[int, int] | None = None) -> None:
        self.allowed, self.forced, self.pos = allowed, forced or {}, 0

    def mask_logits(self, logits: np.ndarray) -> None:
        for token in range(len(logits)):
            if token not in self.allowed:
                logits[token] = -np.inf

    def advance(self, token_id: int) -> None:
        assert token_id in self.allowed or self.forced.get(self.pos) == token_id
        self.pos += 1

    def forced_tokens(self) -> list[int]:
        out, pos = [], self.pos
        while pos in self.forced:
            out.append(self.forced[pos])
            pos += 1
        return out

    def prefer_closing(self, logits: np.ndarray) -> bool:
        return False

    @property
    def is_finished(self) -> bool:
        return False


def decode(
    model: Any = None,
    *,
    max_tokens: int = 8,
    temperature: float = 0.0,
    matcher: Any = None,
    seed: int = 0,
    **fields: Any,
) -> tuple[list[int], DecodeRequest]:
    model = model or FixedModel()
    request = DecodeRequest(
        pending=[1],
        max_tokens=max_tokens,
        temperature=temperature,
        rng=np.random.default_rng(seed),
        stream=TextStream((), None),
        pieces=PIECES,
        eog=frozenset({EOS}),
        matcher=matcher,
        **check_sampling(vocab_size=len(PIECES), **fields),
    )
    generated, _ = run_decode_loop(request, model.evaluate, model.logits)
    return generated, request


def reference_greedy(
    steps: int,
    *,
    presence: float = 0.0,
    frequency: float = 0.0,
    bias: dict[int, float] | None = None,
) -> list[int]:
    """OpenAI's formula, written out: logits + bias - count * frequency - (count > 0) * presence."""
    counts = np.zeros(len(LOGITS))
    out = []
    for _ in range(steps):
        logits = LOGITS.astype(np.float64).copy()
        for token, value in (bias or {}).items():
            logits[token] += value
        logits -= counts * frequency + (counts > 0) * presence
        token = int(np.argmax(logits))
        out.append(token)
        counts[token] += 1
    return out


# -- penalties -------------------------------------------------------------------------------


def test_no_fields_is_plain_greedy() -> None:
    generated, request = decode()
    assert generated == [1] * 8 and request.scores is None


@pytest.mark.parametrize(
    ("presence", "frequency"), [(0.5, 0.0), (0.0, 0.45), (0.35, 0.15), (-0.5, 0.0), (0.0, 1.9)]
)
def test_penalties_change_greedy_choices_exactly_as_the_formula_says(
    presence: float, frequency: float
) -> None:
    generated, _ = decode(max_tokens=12, presence_penalty=presence, frequency_penalty=frequency)
    expected = reference_greedy(12, presence=presence, frequency=frequency)
    assert generated == expected
    if presence > 0 or frequency > 0:
        assert len(set(generated)) > 1  # the penalty did change something


def test_frequency_penalty_counts_every_occurrence_presence_only_the_first() -> None:
    # a=3.0, b=2.63: presence 0.5 makes a 2.5 < b once, and then both are equally penalised
    by_presence, _ = decode(max_tokens=4, presence_penalty=0.5)
    assert by_presence == [1, 2, 1, 1]
    # frequency 0.5: a 3.0, 2.5, 2.5, 2.0 against b 2.63, 2.13 and c 2.21
    by_frequency, _ = decode(max_tokens=4, frequency_penalty=0.5)
    assert by_frequency == reference_greedy(4, frequency=0.5) == [1, 2, 1, 3]


def test_forced_tokens_count_for_the_penalties() -> None:
    # the grammar forces "a" first; a presence penalty then makes "b" the greedy choice
    matcher = Allowed({1, 2, 3}, forced={0: 1})
    generated, _ = decode(max_tokens=2, matcher=matcher, presence_penalty=0.5)
    assert generated == [1, 2]
    unpenalised, _ = decode(max_tokens=2, matcher=Allowed({1, 2, 3}, forced={0: 1}))
    assert unpenalised == [1, 1]


# -- logit_bias ------------------------------------------------------------------------------


def test_logit_bias_can_force_or_forbid_a_token() -> None:
    forced, _ = decode(max_tokens=3, logit_bias={5: 100})
    assert forced == [5, 5, 5]
    forbidden, _ = decode(max_tokens=3, logit_bias={1: -100})
    assert forbidden == [2, 2, 2]
    nudged, _ = decode(max_tokens=3, logit_bias={3: 0.9})  # c: 2.2 + 0.9 > a: 3.0
    assert nudged == reference_greedy(3, bias={3: 0.9}) == [3, 3, 3]


def test_logit_bias_never_brings_back_a_token_the_grammar_forbids() -> None:
    generated, request = decode(
        max_tokens=4, matcher=Allowed({2, 3}), logit_bias={1: 100, 5: 100}, top_logprobs=5
    )
    assert generated == [2, 2, 2, 2]
    assert request.scores is not None
    for _, _, top in request.scores:
        assert {token for token, _ in top} == {2, 3}  # masked tokens are no alternatives


def test_logit_bias_and_penalties_with_sampling_are_seeded() -> None:
    first, _ = decode(temperature=0.8, seed=3, logit_bias={4: 2}, frequency_penalty=0.4)
    second, _ = decode(temperature=0.8, seed=3, logit_bias={4: 2}, frequency_penalty=0.4)
    assert first == second


# -- logprobs --------------------------------------------------------------------------------


def processed(
    counts: dict[int, int], *, bias: dict[int, float], presence: float, frequency: float
) -> np.ndarray:
    logits = LOGITS.astype(np.float64).copy()
    for token, value in bias.items():
        logits[token] += value
    for token, count in counts.items():
        logits[token] -= count * frequency + presence
    return logits


def test_logprobs_are_the_renormalised_distribution_the_token_was_chosen_from() -> None:
    bias, presence, frequency = {4: 1.5}, 0.3, 0.2
    generated, request = decode(
        max_tokens=6,
        matcher=Allowed({1, 2, 3, 4, 6}),
        logit_bias=bias,
        presence_penalty=presence,
        frequency_penalty=frequency,
        top_logprobs=3,
    )
    assert request.scores is not None and len(request.scores) == len(generated)
    counts: dict[int, int] = {}
    for token, (scored, logprob, top) in zip(generated, request.scores, strict=True):
        logits = processed(counts, bias=bias, presence=presence, frequency=frequency)
        logits[[0, 5]] = -np.inf  # the grammar's mask
        expected = log_softmax(logits)
        assert scored == token
        assert logprob == pytest.approx(expected[token], abs=1e-6)
        assert len(top) == 3
        assert [t for t, _ in top] == list(np.argsort(-expected, kind="stable")[:3])
        assert top[0][0] == token  # greedy: the chosen token is the likeliest
        assert [lp for _, lp in top] == pytest.approx([expected[t] for t, _ in top], abs=1e-6)
        assert sum(math.exp(lp) for _, lp in top) <= 1 + 1e-9
        assert all(lp <= 0 for _, lp in top)
        counts[token] = counts.get(token, 0) + 1


def test_all_alternatives_sum_to_one_and_temperature_does_not_change_them() -> None:
    _, greedy = decode(max_tokens=1, top_logprobs=20)
    assert greedy.scores is not None
    (_, _, top) = greedy.scores[0]
    assert len(top) == len(PIECES)  # 20 asked, 7 exist
    assert sum(math.exp(lp) for _, lp in top) == pytest.approx(1.0)
    sampled, hot = decode(max_tokens=1, top_logprobs=20, temperature=1.7, seed=5)
    assert hot.scores is not None
    assert [t for t, _ in hot.scores[0][2]] == [t for t, _ in top]  # before temperature
    assert [lp for _, lp in hot.scores[0][2]] == pytest.approx([lp for _, lp in top])
    assert hot.scores[0][1] == pytest.approx(dict(top)[sampled[0]])


def test_forced_tokens_are_certain() -> None:
    matcher = Allowed({1, 2}, forced={1: 4, 2: 5})
    generated, request = decode(max_tokens=4, matcher=matcher, top_logprobs=2)
    assert generated[1:3] == [4, 5]
    assert request.scores is not None
    assert request.scores[1] == (4, 0.0, ((4, 0.0),))
    assert request.scores[2] == (5, 0.0, ((5, 0.0),))
    assert request.scores[0][1] < 0  # a real choice between a and b
    _, none_asked = decode(max_tokens=4, matcher=Allowed({1, 2}, forced={1: 4}), top_logprobs=0)
    assert none_asked.scores is not None and none_asked.scores[1] == (4, 0.0, ())


def test_recording_logprobs_does_not_change_the_tokens() -> None:
    sampled, _ = decode(max_tokens=10, temperature=1.0, seed=11)
    recorded, _ = decode(max_tokens=10, temperature=1.0, seed=11, top_logprobs=5)
    assert recorded == sampled


def test_token_logprobs_name_the_tokens_and_leave_out_a_stop_string() -> None:
    request = DecodeRequest(
        pending=[1],
        max_tokens=5,
        temperature=0.0,
        rng=np.random.default_rng(0),
        stream=TextStream(["ab"], None),
        pieces=PIECES,
        eog=frozenset({EOS}),
        top_logprobs=1,
    )
    model = FixedModel()
    script = iter([3, 3, 1, 2, 1])  # "c", "c", "a", "b": the stop string "ab" ends the text

    def logits() -> np.ndarray:
        out = np.full(len(PIECES), -1.0, dtype=np.float32)
        out[next(script)] = 2.0
        return out

    generated, _ = run_decode_loop(request, model.evaluate, logits)
    text = request.stream.finish()
    assert generated == [3, 3, 1, 2] and text == "cc"
    logprobs = token_logprobs(request, text)
    assert logprobs is not None
    assert [t.token for t in logprobs] == ["c", "c"]  # the stop string's tokens are left out
    assert logprobs[0].bytes == b"c" and logprobs[0].id == 3
    assert logprobs[0].top_logprobs[0].token == "c"


# -- drafted decoding --------------------------------------------------------------------------


class MarkovModel:
    """Logits that depend on the last token only, with a draft verifier."""

    TABLE = np.array(
        [
            [-5, 3, 1, 0, 0, 0, 0],
            [-5, 0, 3, 2.5, 0, 0, 0],
            [-5, 0, 0, 3, 2.9, 0, 0],
            [-5, 2.8, 0, 0, 3, 0, 0],
            [-5, 3, 2.0, 0, 0, 2.7, 0],
            [-5, 3, 0, 0, 0, 0, 2],
            [-5, 3, 0, 0, 0, 0, 0],
        ],
        dtype=np.float32,
    )

    def __init__(self) -> None:
        self.kv: list[int] = []
        self.verified = 0

    def evaluate(self, tokens: list[int]) -> None:
        self.kv += tokens

    def logits(self) -> np.ndarray:
        return self.TABLE[self.kv[-1]].copy()

    def verify(self, batch: list[int], draft: list[int]) -> Callable[[int], np.ndarray]:
        self.kv += [*batch, *draft]
        self.verified += 1
        last = len(self.kv) - len(draft) - 1
        kv = list(self.kv)
        return lambda i: self.TABLE[kv[last + i]].copy()

    def rewind(self, count: int) -> None:
        del self.kv[len(self.kv) - count :]


def test_drafted_decoding_honours_the_fields_too() -> None:
    prompt = [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3]
    runs = []
    for drafts in (0, 3):
        model = MarkovModel()
        request = DecodeRequest(
            pending=list(prompt),
            max_tokens=16,
            temperature=0.0,
            rng=np.random.default_rng(0),
            stream=TextStream((), None),
            pieces=PIECES,
            eog=frozenset({EOS}),
            context=prompt,
            draft_tokens=drafts,
            **check_sampling(
                vocab_size=len(PIECES),
                logit_bias={5: 0.4},
                presence_penalty=0.1,
                frequency_penalty=0.05,
                top_logprobs=2,
            ),
        )
        generated, _ = run_decode_loop(request, model.evaluate, model.logits, verifier=model)
        runs.append((generated, request.scores, model.verified))
    (plain, plain_scores, _), (drafted, drafted_scores, verified) = runs
    assert verified > 0  # drafts were checked
    assert drafted == plain
    assert drafted_scores == plain_scores


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"logit_bias": {7: 1.0}}, r"logit_bias: token id 7 is not in this model's vocabulary"),
        ({"logit_bias": {-1: 1.0}}, "logit_bias: token id -1"),
        ({"logit_bias": {"3": 1.0}}, "logit_bias: keys must be integer token ids, got '3'"),
        ({"logit_bias": {True: 1.0}}, "logit_bias: keys must be integer"),
        ({"logit_bias": {3: 101}}, "logit_bias: the bias of token 3 must be a number from -100"),
        ({"logit_bias": {3: math.nan}}, "logit_bias: the bias of token 3"),
        ({"logit_bias": [3]}, "logit_bias: must be a mapping"),
        ({"presence_penalty": 2.5}, "presence_penalty: must be a number from -2 to 2"),
        ({"frequency_penalty": "1"}, "frequency_penalty: must be a number"),
        ({"frequency_penalty": math.inf}, "frequency_penalty"),
        ({"top_logprobs": 21}, "top_logprobs: must be an integer from 0 to 20"),
        ({"top_logprobs": -1}, "top_logprobs"),
        ({"top_logprobs": True}, "top_logprobs"),
    ],
)
def test_validation_errors_name_the_field(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(UserError, match=named):
        check_sampling(vocab_size=len(PIECES), **fields)


def test_engines_check_the_fields_against_their_vocabulary() -> None:
    engine = ScriptedEngine(["x"])
    with pytest.raises(UserError, match=r"logit_bias: token id 257 .* \(ids 0 to 256\)"):
        engine.generate("p", logit_bias={257: 1.0})
    with pytest.raises(UserError, match="top_logprobs"):
        engine.generate("p", top_logprobs=30)
    assert engine.generate("p", logit_bias={256: 1.0}).text == "x"


def test_neutral_values_cost_nothing() -> None:
    assert check_sampling(vocab_size=3, logit_bias={}) == {
        "logit_bias": None,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "top_logprobs": None,
    }


# -- engines and chat models -------------------------------------------------------------------


def test_transformers_engine_logprobs_are_the_model_s_biased_penalised_distribution() -> None:
    """A tiny random Llama (as in tests/test_engine_transformers.py): every token's logprob is
    the log-softmax of the model's own logits after the bias and the penalties."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from fncall.engine.transformers import TransformersEngine
    from test_engine_transformers import tiny_llama

    model, tokenizer = tiny_llama()
    engine = TransformersEngine(model, tokenizer=tokenizer, device="cpu")
    prompt = "<|user|>hello<|assistant|>"
    bias, presence, frequency = {65: 3.0, 66: -2.0}, 0.4, 0.3
    generation = engine.generate(
        prompt,
        max_tokens=5,
        logit_bias=bias,
        presence_penalty=presence,
        frequency_penalty=frequency,
        top_logprobs=4,
    )
    assert generation.logprobs is not None
    ids = engine.tokenize(prompt)
    counts: dict[int, int] = {}
    for scored in generation.logprobs:
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1].double().numpy()
        for token, value in bias.items():
            logits[token] += value
        for token, count in counts.items():
            logits[token] -= count * frequency + presence
        expected = log_softmax(logits)
        assert scored.id == int(np.argmax(expected)) == scored.top_logprobs[0].id
        assert scored.logprob == pytest.approx(expected[scored.id], abs=1e-4)
        ids.append(scored.id)
        counts[scored.id] = counts.get(scored.id, 0) + 1
    with pytest.raises(UserError, match="logit_bias: token id 272 is not in this model"):
        engine.generate(prompt, max_tokens=1, logit_bias={272: 1.0})


def test_scripted_engine_records_the_fields_and_replays_with_certainty() -> None:
    engine = ScriptedEngine(["hé", "plain"])
    scored = engine.generate(
        "p", logit_bias={104: -3}, presence_penalty=0.5, frequency_penalty=-0.5, top_logprobs=1
    )
    request = engine.requests[0]
    assert request.logit_bias == {104: -3.0} and request.top_logprobs == 1
    assert (request.presence_penalty, request.frequency_penalty) == (0.5, -0.5)
    assert scored.logprobs is not None
    assert [t.bytes for t in scored.logprobs] == [b"h", b"\xc3", b"\xa9"]
    assert all(t.logprob == 0.0 and t.top_logprobs[0].id == t.id for t in scored.logprobs)
    assert engine.generate("p").logprobs is None


def test_local_chat_passes_the_fields_and_returns_the_logprobs() -> None:
    given = (TokenLogprob(id=5, token="Hi", bytes=b"Hi", logprob=-0.25),)
    engine = ScriptedEngine([Generation(text="Hi", logprobs=given), "again"])
    chat = LocalChat(engine, format="json", judge=None)
    turn = chat.complete(
        "hello", logit_bias={1: 2.0}, presence_penalty=0.1, frequency_penalty=0.2, top_logprobs=3
    )
    assert turn.content == "Hi" and turn.logprobs == given
    request = engine.requests[0]
    assert request.logit_bias == {1: 2.0} and request.top_logprobs == 3
    assert (request.presence_penalty, request.frequency_penalty) == (0.1, 0.2)
    plain = chat.complete("hello")
    assert plain.logprobs is None and engine.requests[1].logit_bias is None
    assert type(plain).__name__ == "AssistantTurn"  # unchanged when nothing is asked


def test_local_chat_streams_the_logprobs_on_the_last_delta() -> None:
    chat = LocalChat(ScriptedEngine(["Hi"]), format="json", judge=None)
    deltas = list(chat.stream("hello", top_logprobs=0))
    assert [d.logprobs for d in deltas[:-1]] == [None] * (len(deltas) - 1)
    assert deltas[-1].logprobs is not None and [t.token for t in deltas[-1].logprobs] == ["H", "i"]


def test_an_engine_without_the_keywords_refuses_them_by_name() -> None:
    chat = LocalChat(OldEngine(["fine", "also fine"]), format="json", judge=None)
    assert chat.complete("hello").content == "fine"  # nothing asked: called as before
    with pytest.raises(UserError, match="logit_bias: the engine 'scripted' does not support it"):
        chat.complete("hello", logit_bias={1: 1.0})


def test_remote_chat_passes_bias_and_penalties_and_refuses_logprobs() -> None:
    remote = RemoteChat("http://127.0.0.1:1/v1", "m", logit_bias={5: 1.0}, presence_penalty=0.2)
    body = remote._request("hi", (), None, True, {"frequency_penalty": 0.3})
    assert body["logit_bias"] == {5: 1.0} and body["frequency_penalty"] == 0.3
    with pytest.raises(UserError, match="top_logprobs: RemoteChat does not return"):
        remote.complete("hi", top_logprobs=2)


# -- the server ----------------------------------------------------------------------------------

MODEL = "scripted-test"
ASK = [{"role": "user", "content": "Weather in Paris?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def local_server(engine: ScriptedEngine, **options: Any) -> BackgroundServer:
    chat = LocalChat(engine, format="json", judge=None, **options)
    return BackgroundServer(create_app(chat, model_name=MODEL))


def post(server: BackgroundServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.base_url + "/v1/chat/completions", json=body, timeout=10)


def test_server_returns_openai_shaped_logprobs() -> None:
    engine = ScriptedEngine(["Sunny.", "Sunny."])
    with local_server(engine) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            logprobs=True,
            top_logprobs=2,
            presence_penalty=0.5,
            frequency_penalty=-0.25,
            logit_bias={"83": 5, "0": -100},
        )
        raw = post(server, {"model": MODEL, "messages": ASK, "logprobs": True}).json()
    choice = reply.choices[0]
    assert choice.message.content == "Sunny."
    assert choice.logprobs is not None and choice.logprobs.content is not None
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == "Sunny."
    assert tokens[0].token == "S" and tokens[0].bytes == [83] and tokens[0].logprob == 0.0
    assert [(t.token, t.logprob) for t in tokens[0].top_logprobs] == [("S", 0.0)]
    request = engine.requests[0]
    assert request.logit_bias == {83: 5.0, 0: -100.0} and request.top_logprobs == 2
    assert (request.presence_penalty, request.frequency_penalty) == (0.5, -0.25)
    # logprobs without top_logprobs: 0 alternatives per token
    assert engine.requests[1].top_logprobs == 0
    first = raw["choices"][0]["logprobs"]
    assert first["refusal"] is None
    assert first["content"][0] == {"token": "S", "logprob": 0.0, "bytes": [83], "top_logprobs": []}


def test_server_streams_the_logprobs_in_one_chunk_after_the_text() -> None:
    engine = ScriptedEngine(["Sunny."])
    with local_server(engine) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        stream = client.chat.completions.create(
            model=MODEL, messages=ASK, logprobs=True, top_logprobs=1, stream=True
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    scored = [
        t
        for c in chunks
        if c.choices and c.choices[0].logprobs
        for t in c.choices[0].logprobs.content
    ]
    assert text == "Sunny." and "".join(t.token for t in scored) == "Sunny."
    assert all(len(t.top_logprobs) == 1 for t in scored)


def test_a_tool_call_turn_has_no_content_logprobs() -> None:
    call = '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'
    engine = ScriptedEngine([call])
    with local_server(engine, constrained=False) as server:
        response = post(
            server, {"model": MODEL, "messages": ASK, "tools": [WEATHER], "logprobs": True}
        )
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls", choice
    assert choice["logprobs"] == {"content": [], "refusal": None}


def test_no_logprobs_unless_asked() -> None:
    with local_server(ScriptedEngine(["Sunny."])) as server:
        response = post(server, {"model": MODEL, "messages": ASK, "presence_penalty": 1})
    assert response.json()["choices"][0]["logprobs"] is None


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"logit_bias": {"abc": 1}}, "logit_bias", "keys must be token ids"),
        ({"logit_bias": {"-3": 1}}, "logit_bias", "keys must be token ids"),
        ({"logit_bias": {"5000": 1}}, "logit_bias", "5000 is not in this model's vocabulary"),
        ({"logit_bias": {"5": 101}}, "logit_bias", "less than or equal to 100"),
        ({"presence_penalty": 2.5}, "presence_penalty", "less than or equal to 2"),
        ({"top_logprobs": 21, "logprobs": True}, "top_logprobs", "less than or equal to 20"),
        ({"top_logprobs": 3}, "top_logprobs", "needs logprobs: true"),
    ],
)
def test_server_refuses_bad_values_by_name(body: dict[str, Any], param: str, message: str) -> None:
    engine = ScriptedEngine(["unused"])
    with local_server(engine) as server:
        for stream in (False, True):
            response = post(server, {"model": MODEL, "messages": ASK, "stream": stream, **body})
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["param"].startswith(param) and message in error["message"], error


def test_a_remote_backend_refuses_logprobs_by_name() -> None:
    remote = RemoteChat("http://127.0.0.1:1/v1", "m")
    with BackgroundServer(create_app(remote, model_name=MODEL)) as server:
        response = post(server, {"model": MODEL, "messages": ASK, "logprobs": True})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (
        error["param"] == "top_logprobs" and "does not return log-probabilities" in error["message"]
    )


def test_a_schema_answer_carries_logprobs() -> None:
    engine = ScriptedEngine(['{"city": "Paris"}'])
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    with local_server(engine) as server:
        response = post(
            server,
            {
                "model": MODEL,
                "messages": ASK,
                "logprobs": True,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "place", "schema": schema},
                },
            },
        )
    choice = response.json()["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"city": "Paris"}
    assert "".join(t["token"] for t in choice["logprobs"]["content"]) == '{"city": "Paris"}'


def test_scripted_chat_gets_the_options_as_given() -> None:
    model = ScriptedChat(["ok"])
    with BackgroundServer(create_app(model, model_name=MODEL)) as server:
        post(
            server,
            {"model": MODEL, "messages": ASK, "logit_bias": {"7": -1}, "frequency_penalty": 0.5},
        )
    assert model.requests[0].options == {"logit_bias": {7: -1.0}, "frequency_penalty": 0.5}


# -- /v1/responses -------------------------------------------------------------------------------


def test_responses_output_text_carries_logprobs() -> None:
    engine = ScriptedEngine(["Sunny.", "Sunny.", "Sunny.", "Sunny."])
    with local_server(engine) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        asked = client.responses.create(model=MODEL, input="Weather?", top_logprobs=2)
        included = client.responses.create(
            model=MODEL, input="Weather?", include=["message.output_text.logprobs"]
        )
        plain = client.responses.create(model=MODEL, input="Weather?")
        events = list(
            client.responses.create(model=MODEL, input="Weather?", top_logprobs=1, stream=True)
        )
    part = asked.output[0].content[0]
    assert part.type == "output_text" and part.text == "Sunny."
    assert part.logprobs is not None
    assert "".join(t.token for t in part.logprobs) == "Sunny."
    assert part.logprobs[0].bytes == [83] and part.logprobs[0].logprob == 0.0
    assert [t.token for t in part.logprobs[0].top_logprobs] == ["S"]
    assert engine.requests[0].top_logprobs == 2 and engine.requests[1].top_logprobs == 0
    assert len(included.output[0].content[0].logprobs or []) == len("Sunny.")
    assert plain.output[0].content[0].logprobs == [] and engine.requests[2].top_logprobs is None
    (done,) = [e for e in events if e.type == "response.output_text.done"]
    assert "".join(t.token for t in done.logprobs) == "Sunny."
    (completed,) = [e for e in events if e.type == "response.completed"]
    assert len(completed.response.output[0].content[0].logprobs or []) == len("Sunny.")
