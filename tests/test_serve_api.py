"""The real server (uvicorn on a loopback port) driven by the official ``openai`` client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from fncall.engine.scripted import ScriptedChat
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer
from fncall.types import AssistantTurn, ToolCall, ToolChoice

MODEL = "scripted-test"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Local time in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ASK = [{"role": "user", "content": "Weather and time in Paris and Rome?"}]


def weather_call(city: str, call_id: str | None = None) -> ToolCall:
    arguments = {"city": city, "unit": "celsius", "note": 'quotes " and \\ and ü'}
    return ToolCall(name="get_weather", arguments=arguments, id=call_id or f"call_{city}")


@pytest.fixture
def model() -> ScriptedChat:
    return ScriptedChat(chunk_size=3)


@pytest.fixture
def client(model: ScriptedChat) -> Iterator[openai.OpenAI]:
    app = create_app(model, model_name=MODEL)
    with BackgroundServer(app) as server:
        yield openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)


def test_non_streaming_tool_call(model: ScriptedChat, client: openai.OpenAI) -> None:
    model.enqueue(AssistantTurn(tool_calls=(weather_call("Paris"),)))
    reply = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER])

    assert reply.object == "chat.completion"
    assert reply.model == MODEL and reply.id.startswith("chatcmpl-") and reply.created > 0
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.role == "assistant" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id == "call_Paris" and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == dict(weather_call("Paris").arguments)
    assert reply.usage is not None and reply.usage.total_tokens >= 0

    (seen,) = model.requests
    assert [t.name for t in seen.tools] == ["get_weather"]
    assert seen.tools[0].parameters == WEATHER["function"]["parameters"]
    assert seen.messages[0].role == "user" and seen.messages[0].content == ASK[0]["content"]
    assert seen.tool_choice == ToolChoice() and seen.parallel_tool_calls is True
    assert not seen.streamed


def test_text_answer_finish_reasons(model: ScriptedChat, client: openai.OpenAI) -> None:
    model.enqueue("Sunny.", AssistantTurn(content="Sun", finish_reason="length"))
    first = client.chat.completions.create(model=MODEL, messages=ASK)
    assert first.choices[0].message.content == "Sunny."
    assert first.choices[0].finish_reason == "stop"
    assert not first.choices[0].message.tool_calls
    second = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=3)
    assert second.choices[0].finish_reason == "length"


def reassemble(stream: openai.Stream) -> tuple[list[dict[str, str]], str, str | None, list]:
    calls: dict[int, dict[str, str]] = {}
    content, finish, chunks = "", None, []
    for chunk in stream:
        chunks.append(chunk)
        assert chunk.object == "chat.completion.chunk"
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for fragment in delta.tool_calls or []:
            slot = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += fragment.id or ""
            if fragment.function:
                slot["name"] += fragment.function.name or ""
                slot["arguments"] += fragment.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    return [calls[i] for i in sorted(calls)], content, finish, chunks


def test_streaming_tool_calls_reassemble(model: ScriptedChat, client: openai.OpenAI) -> None:
    turn = AssistantTurn(
        content="Checking.", tool_calls=(weather_call("Paris"), weather_call("Rome"))
    )
    model.enqueue(turn)
    stream = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], stream=True)
    calls, content, finish, chunks = reassemble(stream)

    assert chunks[0].choices[0].delta.role == "assistant"
    assert finish == "tool_calls" and content == "Checking."
    assert [c["id"] for c in calls] == ["call_Paris", "call_Rome"]
    assert [c["name"] for c in calls] == ["get_weather", "get_weather"]
    for call, expected in zip(calls, turn.tool_calls, strict=True):
        assert json.loads(call["arguments"]) == dict(expected.arguments)
    # Calls are held until the conversation loop has decided on them (run on the server, or
    # handed back with parallel_tool_calls applied), then sent as a header and the arguments.
    call_chunks = [c for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(call_chunks) == 4
    assert call_chunks[-1] is not chunks[-1]  # the finish chunk comes after the calls
    assert model.requests[0].streamed


def test_streaming_text(model: ScriptedChat, client: openai.OpenAI) -> None:
    model.enqueue("It is sunny in Paris today.")
    stream = client.chat.completions.create(model=MODEL, messages=ASK, stream=True)
    calls, content, finish, _ = reassemble(stream)
    assert calls == [] and content == "It is sunny in Paris today." and finish == "stop"


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("none", ToolChoice(mode="none")),
        ("auto", ToolChoice(mode="auto")),
        ("required", ToolChoice(mode="required")),
        (
            {"type": "function", "function": {"name": "get_time"}},
            ToolChoice(mode="required", allowed=("get_time",)),
        ),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "get_weather"}}],
                },
            },
            ToolChoice(mode="required", allowed=("get_weather",)),
        ),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "auto",
                    "tools": [{"type": "function", "function": {"name": "get_time"}}],
                },
            },
            ToolChoice(mode="auto", allowed=("get_time",)),
        ),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_tool_choice_reaches_the_model(
    model: ScriptedChat,
    client: openai.OpenAI,
    tool_choice: object,
    expected: ToolChoice,
    stream: bool,
) -> None:
    model.enqueue("ok")
    response = client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice=tool_choice,
        stream=stream,
    )
    if stream:
        list(response)
    (seen,) = model.requests
    assert seen.tool_choice == expected
    assert [t.name for t in seen.tools] == ["get_weather", "get_time"]


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_calls_on_and_off(
    model: ScriptedChat, client: openai.OpenAI, stream: bool
) -> None:
    both = AssistantTurn(tool_calls=(weather_call("Paris"), weather_call("Rome")))
    model.enqueue(both, both)

    def names(parallel: bool) -> list[str]:
        response = client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[WEATHER],
            parallel_tool_calls=parallel,
            stream=stream,
        )
        if stream:
            calls, _, finish, _ = reassemble(response)
            assert finish == "tool_calls"
            return [json.loads(c["arguments"])["city"] for c in calls]
        message = response.choices[0].message
        return [json.loads(c.function.arguments)["city"] for c in message.tool_calls or []]

    assert names(True) == ["Paris", "Rome"]
    assert model.requests[-1].parallel_tool_calls is True
    # the model is told, and the client is never handed more than one call
    assert names(False) == ["Paris"]
    assert model.requests[-1].parallel_tool_calls is False


def test_tool_results_in_follow_up_turn(model: ScriptedChat, client: openai.OpenAI) -> None:
    model.enqueue(AssistantTurn(tool_calls=(weather_call("Paris", "call_1"),)), "21 °C in Paris.")
    first = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER])
    assistant = first.choices[0].message
    history = [
        *ASK,
        assistant.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'},
    ]
    second = client.chat.completions.create(model=MODEL, messages=history, tools=[WEATHER])
    assert second.choices[0].message.content == "21 °C in Paris."

    seen = model.requests[1].messages
    assert [m.role for m in seen] == ["user", "assistant", "tool"]
    assert seen[1].tool_calls[0].name == "get_weather"
    assert dict(seen[1].tool_calls[0].arguments) == dict(weather_call("Paris").arguments)
    assert seen[2].tool_call_id == "call_1" and seen[2].content == '{"temperature": 21}'


def test_sampling_options_reach_the_model(model: ScriptedChat, client: openai.OpenAI) -> None:
    model.enqueue("ok")
    client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "developer", "content": "Be brief."}, *ASK],
        temperature=0.3,
        max_tokens=64,
        stop=["\n\n"],
        seed=7,
        top_p=0.9,
    )
    (seen,) = model.requests
    assert seen.options == {
        "temperature": 0.3,
        "max_tokens": 64,
        "stop": ["\n\n"],
        "seed": 7,
        "top_p": 0.9,
    }
    assert seen.messages[0].role == "system"


def test_models_and_health(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL


def test_local_chat_pipeline_behind_the_server() -> None:
    """The CLI's model side (LocalChat over an engine), with a scripted engine underneath."""
    chat = pytest.importorskip("fncall.pipeline")
    from fncall.engine.scripted import ScriptedEngine

    text = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    engine = ScriptedEngine([text, text])
    app = create_app(chat.LocalChat(engine, format="json", constrained=False), model_name=MODEL)
    with BackgroundServer(app) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model=MODEL, messages=ASK, tools=[WEATHER], max_tokens=100, seed=1
        )
        (call,) = reply.choices[0].message.tool_calls or []
        assert json.loads(call.function.arguments) == {"city": "Paris"}
        assert reply.choices[0].finish_reason == "tool_calls"
        stream = client.chat.completions.create(
            model=MODEL, messages=ASK, tools=[WEATHER], stream=True
        )
        calls, _, finish, _ = reassemble(stream)
        assert finish == "tool_calls" and json.loads(calls[0]["arguments"]) == {"city": "Paris"}
        # top_p reaches the engine's sampler when it can change the answer
        engine.enqueue("Sunny.")
        client.chat.completions.create(model=MODEL, messages=ASK, top_p=0.5, temperature=0.7)
        assert engine.requests[-1].top_p == 0.5 and engine.requests[-1].temperature == 0.7
    assert engine.requests[0].max_tokens == 100 and engine.requests[0].seed == 1


def test_usage_counts_the_tokens_a_request_took() -> None:
    from fncall.engine.base import Generation
    from fncall.engine.scripted import ScriptedEngine
    from fncall.pipeline import LocalChat

    output = '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'
    engine = ScriptedEngine([Generation(text=output, cached_tokens=7)] * 2)
    with BackgroundServer(create_app(LocalChat(engine, format="json"), model_name=MODEL)) as srv:
        client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER])
        stream = client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[WEATHER],
            stream=True,
            stream_options={"include_usage": True},
        )
        (streamed,) = [chunk.usage for chunk in stream if chunk.usage is not None]
    request = engine.requests[0]
    assert reply.usage is not None  # ScriptedEngine's tokens are bytes
    assert reply.usage.prompt_tokens == len(request.prompt.encode()) > 0
    assert reply.usage.completion_tokens == len(output.encode())
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 7
    assert streamed.model_dump() == reply.usage.model_dump()


def test_a_self_contradicting_schema_reaches_the_model_repaired(
    model: ScriptedChat, client: openai.OpenAI
) -> None:
    # BFCL's live data has array parameters with a scalar enum: nothing satisfies both, so the
    # grammar and the validator each read it their own way unless it is repaired on the way in.
    tags = {"type": "array", "items": {"type": "string"}, "enum": ["red", "blue"]}
    tool = {
        "type": "function",
        "function": {
            "name": "paint",
            "parameters": {"type": "object", "properties": {"tags": tags}},
        },
    }
    model.enqueue(AssistantTurn(tool_calls=(ToolCall(name="paint", arguments={"tags": ["red"]}),)))
    reply = client.chat.completions.create(model=MODEL, messages=ASK, tools=[tool])

    (call,) = reply.choices[0].message.tool_calls or []
    assert json.loads(call.function.arguments) == {"tags": ["red"]}
    (seen,) = model.requests
    assert seen.tools[0].parameters["properties"]["tags"] == {
        "type": "array",
        "items": {"type": "string", "enum": ["red", "blue"]},
    }
