"""The request fields agent frameworks send (issue 21, items 3-6), through the real server.

Each field is honoured, accepted and ignored (it cannot change the answer), or refused with a
400 naming it (honouring it would change the answer, and the model cannot). The sampling fields
(penalties, logit_bias, logprobs) are tested in depth in tests/test_sampling_fields.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from fncall.engine.scripted import ScriptedChat, ScriptedEngine
from fncall.pipeline import LocalChat
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer
from fncall.types import AssistantTurn, ToolCall

MODEL = "scripted-test"
ASK = [{"role": "user", "content": "Weather in Paris?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def model() -> ScriptedChat:
    return ScriptedChat(chunk_size=3)


@pytest.fixture
def server(model: ScriptedChat) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(model, model_name=MODEL)) as running:
        yield running


@pytest.fixture
def client(server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)


def post(server: BackgroundServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.base_url + "/v1/chat/completions", json=body, timeout=10)


def test_top_p_is_accepted_by_a_local_model() -> None:
    """top_p=1.0 keeps every token (today's behaviour); under greedy decoding (temperature 0)
    no top_p changes the answer. Neither reaches LocalChat, which would refuse it."""
    engine = ScriptedEngine(["one", "two"])
    chat = LocalChat(engine, format="json", judge=None)
    with BackgroundServer(create_app(chat, model_name=MODEL)) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        first = client.chat.completions.create(model=MODEL, messages=ASK, top_p=1.0)
        second = client.chat.completions.create(model=MODEL, messages=ASK, top_p=0.3, temperature=0)
    assert first.choices[0].message.content == "one"
    assert second.choices[0].message.content == "two"


def test_top_p_reaches_a_sampling_model(model: ScriptedChat, client: openai.OpenAI) -> None:
    model.enqueue("a", "b")
    client.chat.completions.create(model=MODEL, messages=ASK, top_p=0.9, temperature=0.7)
    client.chat.completions.create(model=MODEL, messages=ASK, top_p=1.0, temperature=0.7)
    assert model.requests[0].options == {"top_p": 0.9, "temperature": 0.7}
    assert model.requests[1].options == {"temperature": 0.7}


def test_informational_fields_are_accepted_and_ignored(
    model: ScriptedChat, client: openai.OpenAI
) -> None:
    model.enqueue("plain", "streamed")
    fields: dict[str, Any] = {
        "presence_penalty": 0.0,
        "frequency_penalty": 0,
        "logit_bias": {},
        "logprobs": False,
        "top_logprobs": 0,
        "store": False,
        "metadata": {"run": "17"},
        "service_tier": "auto",
        "reasoning_effort": "low",
        "prompt_cache_key": "session-4",
        "verbosity": "low",
        "safety_identifier": "user-hash",
        "user": "someone",
        "modalities": ["text"],
    }
    reply = client.chat.completions.create(model=MODEL, messages=ASK, **fields)
    assert reply.choices[0].message.content == "plain"
    stream = client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        stream=True,
        stream_options={"include_usage": True, "include_obfuscation": False},
        **fields,
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "streamed"
    assert [r.options for r in model.requests] == [{}, {}]


def test_audio_output_is_refused_by_name(model: ScriptedChat, server: BackgroundServer) -> None:
    response = post(server, {"model": MODEL, "messages": ASK, "modalities": ["text", "audio"]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "modalities" and "not supported by this model" in error["message"]
    assert model.requests == []


@pytest.mark.parametrize(
    ("field", "value", "options"),
    [
        ("presence_penalty", 0.5, {"presence_penalty": 0.5}),
        ("frequency_penalty", -1.0, {"frequency_penalty": -1.0}),
        ("logit_bias", {"50256": -100}, {"logit_bias": {50256: -100}}),
        ("logprobs", True, {"top_logprobs": 0}),
    ],
)
def test_sampling_fields_reach_the_model(
    model: ScriptedChat, client: openai.OpenAI, field: str, value: Any, options: dict[str, Any]
) -> None:
    """Issue 21: the local engines honour them (tests/test_sampling_fields.py); a model that
    cannot refuses them, naming the field."""
    model.enqueue("ok")
    client.chat.completions.create(model=MODEL, messages=ASK, **{field: value})
    assert model.requests[0].options == options


def test_top_logprobs_needs_logprobs(model: ScriptedChat, server: BackgroundServer) -> None:
    response = post(server, {"model": MODEL, "messages": ASK, "top_logprobs": 3})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "top_logprobs" and "needs logprobs: true" in error["message"]
    assert model.requests == []


def test_messages_the_sdk_returned_are_accepted_back(
    model: ScriptedChat, client: openai.OpenAI
) -> None:
    call = ToolCall(name="get_weather", arguments={"city": "Paris"}, id="call_1")
    model.enqueue(AssistantTurn(tool_calls=(call,)), "Sunny.", "You're welcome.")
    first = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER])
    returned = first.choices[0].message.model_dump()
    assert {"annotations", "audio", "function_call", "refusal"} <= set(returned)
    messages: list[Any] = [
        *ASK,
        returned,
        {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    answer = {**second.choices[0].message.model_dump(), "reasoning_content": "It is sunny."}
    messages += [answer, {"role": "user", "content": "Thanks"}]
    client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    seen = model.requests[2].messages
    assert [m.role for m in seen] == ["user", "assistant", "tool", "assistant", "user"]
    assert seen[1].tool_calls == (call,) and seen[3].content == "Sunny."


def test_usage_is_reported_plain_and_streamed(model: ScriptedChat, client: openai.OpenAI) -> None:
    counted = AssistantTurn(content="Hi.", prompt_tokens=12, completion_tokens=3, cached_tokens=4)
    model.enqueue(counted, counted)
    reply = client.chat.completions.create(model=MODEL, messages=ASK)
    stream = client.chat.completions.create(
        model=MODEL, messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    (streamed,) = [chunk.usage for chunk in stream if chunk.usage is not None]
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (12, 3)
    assert reply.usage.total_tokens == 15
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 4
    assert streamed.model_dump() == reply.usage.model_dump()


@pytest.mark.parametrize("field", ["stream", "stop", "store", "stream_options"])
def test_error_names_a_field_starting_with_str(server: BackgroundServer, field: str) -> None:
    response = post(server, {"model": MODEL, "messages": ASK, field: {"bad": [1]}})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] is not None and error["param"].startswith(field), error
    assert field in error["message"] and "None" not in error["message"]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-1"}},
    ],
)
def test_images_and_other_media_are_not_supported(
    model: ScriptedChat, server: BackgroundServer, part: dict[str, Any]
) -> None:
    content = [{"type": "text", "text": "What is this?"}, part]
    response = post(server, {"model": MODEL, "messages": [{"role": "user", "content": content}]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "messages[0].content[1]"
    assert "not supported by this model" in error["message"], error["message"]
    assert json.dumps(part["type"]) in error["message"]
    assert model.requests == []
