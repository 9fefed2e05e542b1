"""``POST /v1/responses`` (issue 21, item 1), driven by the official ``openai`` client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest
from pydantic import BaseModel

from fncall.engine.scripted import ScriptedChat, ScriptedEngine
from fncall.pipeline import LocalChat
from fncall.serve import create_app, read_exchanges
from fncall.serve.testing import BackgroundServer
from fncall.types import AssistantTurn, ToolCall, ToolChoice

MODEL = "scripted-test"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
TIME = {
    "type": "function",
    "name": "get_time",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PARIS = ToolCall(name="get_weather", arguments={"city": "Paris", "note": 'a "quote"'}, id="call_1")
ROME = ToolCall(name="get_weather", arguments={"city": "Rome"}, id="call_2")


class Weather(BaseModel):
    city: str
    celsius: int


@pytest.fixture
def model() -> ScriptedChat:
    return ScriptedChat(chunk_size=3)


@pytest.fixture
def server(model: ScriptedChat, tmp_path: Path) -> Iterator[BackgroundServer]:
    app = create_app(model, model_name=MODEL, trace_db=tmp_path / "trace.db", max_tokens_cap=512)
    with BackgroundServer(app) as running:
        yield running


@pytest.fixture
def client(server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)


def post(server: BackgroundServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.base_url + "/v1/responses", json=body, timeout=10)


def test_plain_text(model: ScriptedChat, client: openai.OpenAI, tmp_path: Path) -> None:
    model.enqueue(AssistantTurn(content="Hello!", prompt_tokens=9, completion_tokens=2))
    response = client.responses.create(
        model=MODEL,
        input="Hi",
        instructions="Be brief.",
        max_output_tokens=64,
        temperature=0.5,
        top_p=0.9,
        store=False,
        metadata={"run": "1"},
    )
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed" and response.model == MODEL
    assert response.output_text == "Hello!"
    (item,) = response.output
    assert item.type == "message" and item.role == "assistant" and item.status == "completed"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (9, 2)
    assert response.usage.total_tokens == 11
    assert response.instructions == "Be brief." and response.max_output_tokens == 64
    (seen,) = model.requests
    assert [(m.role, m.content) for m in seen.messages] == [
        ("system", "Be brief."),
        ("user", "Hi"),
    ]
    assert seen.options == {"max_tokens": 64, "temperature": 0.5, "top_p": 0.9}
    (exchange,) = list(read_exchanges(tmp_path / "trace.db"))
    assert exchange["status"] == 200 and exchange["response"]["content"] == "Hello!"


def test_tool_calls_and_their_outputs(model: ScriptedChat, client: openai.OpenAI) -> None:
    model.enqueue(AssistantTurn(tool_calls=(PARIS, ROME)), "Sunny in both.")
    input_items: list[Any] = [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris, Rome?"}]}
    ]
    first = client.responses.create(
        model=MODEL, input=input_items, tools=[WEATHER, TIME], tool_choice="required"
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(c.call_id, c.name) for c in calls] == [("call_1", "get_weather")] * 1 + [
        ("call_2", "get_weather")
    ]
    assert json.loads(calls[0].arguments) == dict(PARIS.arguments)
    assert model.requests[0].tool_choice == ToolChoice(mode="required")
    input_items += [item.model_dump() for item in first.output]
    input_items += [
        {"type": "function_call_output", "call_id": "call_1", "output": "21 C"},
        {"type": "function_call_output", "call_id": "call_2", "output": "24 C"},
    ]
    second = client.responses.create(
        model=MODEL,
        input=input_items,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
    )
    assert second.output_text == "Sunny in both."
    seen = model.requests[1]
    assert [m.role for m in seen.messages] == ["user", "assistant", "tool", "tool"]
    assert seen.messages[1].tool_calls == (PARIS, ROME)
    assert (seen.messages[2].tool_call_id, seen.messages[2].content) == ("call_1", "21 C")
    assert seen.parallel_tool_calls is False


def test_streamed_text_and_calls_reassemble(model: ScriptedChat, client: openai.OpenAI) -> None:
    model.enqueue(
        AssistantTurn(content="Let me check.", tool_calls=(PARIS, ROME), completion_tokens=5)
    )
    events = list(
        client.responses.create(model=MODEL, input="Weather?", tools=[WEATHER], stream=True)
    )
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Let me check."
    arguments: dict[str, str] = {}
    for event in events:
        if event.type == "response.function_call_arguments.delta":
            arguments[event.item_id] = arguments.get(event.item_id, "") + event.delta
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [json.loads(arguments[e.item_id]) for e in done] == [
        dict(PARIS.arguments),
        dict(ROME.arguments),
    ]
    assert all(arguments[e.item_id] == e.arguments for e in done)
    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert [item.type for item in added] == ["message", "function_call", "function_call"]
    final = events[-1].response
    assert final.status == "completed" and final.output_text == "Let me check."
    assert [item.type for item in final.output] == ["message", "function_call", "function_call"]
    assert final.usage is not None and final.usage.output_tokens == 5


def test_streamed_text_only(model: ScriptedChat, client: openai.OpenAI) -> None:
    model.enqueue("Bonjour tout le monde.")
    with client.responses.stream(model=MODEL, input="Say hello in French.") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Bonjour tout le monde."


def test_structured_output_under_the_grammar() -> None:
    engine = ScriptedEngine(['{"city": "Paris", "celsius": 21}'])
    chat = LocalChat(engine, format="json", judge=None)
    with BackgroundServer(create_app(chat, model_name=MODEL)) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        response = client.responses.parse(model=MODEL, input="Paris?", text_format=Weather)
    assert response.output_parsed == Weather(city="Paris", celsius=21)
    assert engine.requests[0].constraint is not None


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id", "not stored"),
        ({"max_output_tokens": 100_000}, "max_output_tokens", "cap"),
        ({"background": True}, "background", "not supported"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]", "function"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input[0]", "reasoning"),
        (
            {"input": [{"type": "function_call_output", "call_id": "x", "output": "1"}]},
            "input[0].call_id",
            "no earlier",
        ),
        ({"text": {"format": {"type": "json_schema", "name": "w"}}}, "text.format", "schema"),
    ],
)
def test_bad_requests_name_the_field(
    model: ScriptedChat, server: BackgroundServer, body: dict[str, Any], param: str, says: str
) -> None:
    response = post(server, {"model": MODEL, "input": "Hi", **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and says in error["message"], error
    assert model.requests == []


def test_same_gate_as_chat_completions(model: ScriptedChat) -> None:
    app = create_app(model, model_name=MODEL, api_key="sk-1")
    with BackgroundServer(app) as server:
        denied = httpx.post(server.base_url + "/v1/responses", json={"model": MODEL, "input": "x"})
        assert denied.status_code == 401
        wrong = post(server, {"model": "gpt-5", "input": "x"})
        assert wrong.status_code in (401, 404)
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="sk-1", max_retries=0)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="gpt-5", input="x")
        model.enqueue("ok")
        assert client.responses.create(model=MODEL, input="x").output_text == "ok"


@pytest.mark.parametrize("stream", [False, True])
def test_server_executed_tools(tmp_path: Path, stream: bool) -> None:
    """With --execute-tools the server runs its own calls; the response holds the answer."""
    from fncall.tools import load_tool_file

    path = tmp_path / "adding.py"
    path.write_text(
        'def add(a: int, b: int) -> int:\n    """Add two integers.\n\n    Args:\n'
        '        a: The first number.\n        b: The second number.\n    """\n'
        "    return a + b\n"
    )
    model = ScriptedChat(
        [
            AssistantTurn(tool_calls=(ToolCall(name="add", arguments={"a": 2, "b": 3}),)),
            lambda messages, tools: f"The sum is {messages[-1].content}.",
        ]
    )
    app = create_app(model, model_name=MODEL, tools=list(load_tool_file(path)), execute_tools=True)
    with BackgroundServer(app) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        if stream:
            with client.responses.stream(model=MODEL, input="2 + 3?") as events:
                response = events.get_final_response()
        else:
            response = client.responses.create(model=MODEL, input="2 + 3?")
    assert response.output_text == "The sum is 5."
    assert [item.type for item in response.output] == ["message"]


def test_long_text_input_and_content(model: ScriptedChat, client: openai.OpenAI) -> None:
    """The item limit bounds lists, not the length of a text."""
    long = "word " * 400
    model.enqueue("ok", "ok")
    client.responses.create(model=MODEL, input=long)
    client.responses.create(model=MODEL, input=[{"role": "user", "content": long}])
    assert [r.messages[-1].content for r in model.requests] == [long, long]
