"""litellm, unchanged, against ``fncall serve`` with scripted models (issue 21).

``litellm.completion`` with an ``openai/`` model and ``api_base``: a tool call, its result sent
back (the assistant message as litellm returned it), the answer; the same call streamed and
reassembled by ``stream_chunk_builder``; ``response_format`` with a pydantic model, generated
under the grammar; usage. ``litellm.responses`` runs the same tool task on the Responses API.
Its price list comes from its own copy, and telemetry is off.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from fncall.engine.scripted import ScriptedChat
from fncall.types import AssistantTurn
from serve_frameworks_support import (
    ANSWER,
    LITELLM_TYPED_DICT_WARNING,
    WEATHER_JSON,
    Weather,
    grammar_chat,
    internet_blocked,  # noqa: F401 (a fixture, used by name)
    loopback_only,
    paris_call,
    serve,
)

# litellm fetches its model price list from GitHub at import unless told to use its own copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
with loopback_only() as tried_on_import:
    litellm = pytest.importorskip("litellm")
assert tried_on_import == [], tried_on_import

litellm.telemetry = False
pytestmark = [
    pytest.mark.usefixtures("internet_blocked"),
    pytest.mark.filterwarnings(LITELLM_TYPED_DICT_WARNING),
]
MODEL = "openai/scripted-test"
PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CHAT_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather", "parameters": PARAMETERS},
}
RESPONSES_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather",
    "parameters": PARAMETERS,
}


def test_completion_tool_call_result_answer_and_usage() -> None:
    first = AssistantTurn(tool_calls=paris_call().tool_calls, prompt_tokens=40, completion_tokens=9)
    model = ScriptedChat(chunk_size=3).enqueue(first, ANSWER)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    with serve(model) as server:
        options = {
            "model": MODEL,
            "api_base": server.base_url,
            "api_key": "x",
            "tools": [CHAT_TOOL],
        }
        reply = litellm.completion(messages=messages, **options)
        (call,) = reply.choices[0].message.tool_calls
        assert call.function.name == "get_weather"
        assert call.function.arguments == '{"city": "Paris"}'
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (40, 9)
        messages.append(reply.choices[0].message.model_dump())
        messages.append({"role": "tool", "tool_call_id": call.id, "content": WEATHER_JSON})
        answer = litellm.completion(messages=messages, **options)
    assert answer.choices[0].message.content == ANSWER
    seen = model.requests[1].messages
    assert [m.role for m in seen] == ["user", "assistant", "tool"]
    assert seen[1].tool_calls[0].arguments == {"city": "Paris"}
    assert seen[2].content == WEATHER_JSON


def test_streamed_tool_call_reassembles() -> None:
    model = ScriptedChat(chunk_size=3).enqueue(paris_call())
    with serve(model) as server:
        chunks = list(
            litellm.completion(
                model=MODEL,
                api_base=server.base_url,
                api_key="x",
                messages=[{"role": "user", "content": "Weather in Paris?"}],
                tools=[CHAT_TOOL],
                stream=True,
            )
        )
    assert len(chunks) > 2
    (call,) = litellm.stream_chunk_builder(chunks).choices[0].message.tool_calls
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')
    assert model.requests[0].streamed


def test_response_format_is_generated_under_the_grammar() -> None:
    chat, engine = grammar_chat(WEATHER_JSON)
    with serve(chat) as server:
        reply = litellm.completion(
            model=MODEL,
            api_base=server.base_url,
            api_key="x",
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            response_format=Weather,
        )
    assert Weather.model_validate_json(reply.choices[0].message.content) == Weather(
        city="Paris", celsius=21
    )
    assert engine.requests[0].constraint is not None


def test_responses_tool_call_result_answer() -> None:
    model = ScriptedChat(chunk_size=3).enqueue(paris_call(), ANSWER)
    with serve(model) as server:
        options = {"model": MODEL, "api_base": server.base_url, "api_key": "x"}
        first = litellm.responses(input="Weather in Paris?", tools=[RESPONSES_TOOL], **options)
        (call,) = first.output
        assert (call.name, call.arguments) == ("get_weather", '{"city": "Paris"}')
        result = {"type": "function_call_output", "call_id": call.call_id, "output": WEATHER_JSON}
        user = {"role": "user", "content": "Weather in Paris?"}
        answer = litellm.responses(
            input=[user, call.model_dump(), result], tools=[RESPONSES_TOOL], **options
        )
    assert answer.output_text == ANSWER
    assert model.requests[1].messages[-1].content == WEATHER_JSON
    assert set(server.paths) == {"/v1/responses"}
