"""What agent frameworks send that ``fncall serve`` refused or answered wrongly (issue 21), tested
without them: each case here was found by a framework test (``tests/test_serve_<framework>.py``)
and fails on the commit before its fix."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
import pytest

from conftest import WEATHER
from fncall.engine.scripted import ScriptedChat
from serve_frameworks_support import ANSWER, WEATHER_JSON, paris_call, serve


def test_a_streamed_tool_call_sent_back_with_its_index_is_accepted() -> None:
    # LlamaIndex (through litellm) sends back the calls it assembled from streamed chunks as
    # they are, each with the "index" its chunks carried: it was a 400 naming
    # messages[1].tool_calls[0].index, which stopped FunctionAgent after its first tool call.
    model = ScriptedChat().enqueue(ANSWER)
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": WEATHER_JSON},
    ]
    with serve(model) as server:
        reply = httpx.post(
            server.base_url + "/chat/completions",
            json={"model": "scripted-test", "messages": messages},
            timeout=10,
        )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == ANSWER
    (seen_call,) = model.requests[0].messages[1].tool_calls
    assert seen_call == paris_call().tool_calls[0]


@pytest.mark.parametrize(
    "tool_choice",
    ["required", {"type": "function", "function": {"name": "report"}}],
    ids=["required", "named"],
)
def test_a_required_call_after_a_result_stands(tool_choice: str | dict[str, Any]) -> None:
    # pydantic-ai's default structured output: after a tool's result it asks with
    # tool_choice="required" for its output tool, whose name and description share no word
    # with the request. Rule 4 of the conversation loop took that call for unasked work and
    # asked the model again under "none": the client got text where it demanded a call (and
    # pydantic-ai spent a retry on it).
    model = ScriptedChat().enqueue(paris_call("report", "call_2", celsius=21))
    report = {
        "type": "function",
        "function": {
            "name": "report",
            "description": "The final response which ends this conversation",
            "parameters": {
                "type": "object",
                "properties": {"celsius": {"type": "integer"}},
                "required": ["celsius"],
            },
        },
    }
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        paris_call().to_message().to_openai(),
        {"role": "tool", "tool_call_id": "call_1", "content": WEATHER_JSON},
    ]
    body = {
        "model": "scripted-test",
        "messages": messages,
        "tools": [WEATHER.to_openai(), report],
        "tool_choice": tool_choice,
    }
    with serve(model) as server:
        reply = httpx.post(server.base_url + "/chat/completions", json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    choice = reply.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert (call["function"]["name"], json.loads(call["function"]["arguments"])) == (
        "report",
        {"celsius": 21},
    )
    modes = [r.tool_choice.mode if r.tool_choice else None for r in model.requests]
    assert modes == ["required"]
