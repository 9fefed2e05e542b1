"""The one conversation loop and its rules, held against every caller that drives it.

``fncall.chat()``, ``Agent.run``/``arun``, the server (``--execute-tools``, with and without
streaming) and ``fncall chat`` all go through ``fncall.execute.conversation``; each is checked
here on the same script: ``tool_choice="required"`` over two steps ends in a text answer.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from dataclasses import replace

import openai
import pytest

from fncall.cli.chat import _turn as cli_turn
from fncall.engine.scripted import ScriptedChat
from fncall.errors import ModelOutputError, UserError
from fncall.execute import (
    Agent,
    AskModel,
    CallsRepeated,
    RunCalls,
    ToolCallsStarted,
    ToolConversation,
    ToolResultsReady,
    chat,
    run_conversation,
)
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer
from fncall.tools import ToolSet
from fncall.types import AssistantTurn, Message, Tool, ToolCall, ToolChoice, ToolResult

MODEL = "scripted"


def get_weather(city: str) -> dict:
    """Current weather in a city.

    Args:
        city: The city name.
    """
    return {"city": city, "celsius": 18}


def delete_everything() -> str:
    """Deletes every record."""
    raise AssertionError("an excluded tool ran")


TOOLS = ToolSet([get_weather, delete_everything])
WEATHER = TOOLS.get("get_weather")


def weather(city: str = "Paris", call_id: str | None = None) -> AssistantTurn:
    extra = {"id": call_id} if call_id else {}
    return AssistantTurn(
        tool_calls=(ToolCall(name="get_weather", arguments={"city": city}, **extra),)
    )


def modes(model: ScriptedChat) -> list[str]:
    return [
        request.tool_choice.mode if request.tool_choice else "auto" for request in model.requests
    ]


# -- the rules, on the loop itself -------------------------------------------------------------


def drive(
    script,
    *,
    max_steps=4,
    tool_choice=None,
    parallel=True,
    messages=None,
    run_tools=None,
    tools=TOOLS,
):
    model = ScriptedChat(script)
    conversation = ToolConversation(
        messages or [Message(role="user", content="Weather in Paris?")],
        tools.tools,
        max_steps=max_steps,
        tool_choice=ToolChoice.parse(tool_choice, tools.names),
        parallel_tool_calls=parallel,
    )

    def complete(ask: AskModel) -> AssistantTurn:
        return ask.send(model.complete)

    def run(calls):
        return [ToolResult(call_id=c.id, name=c.name, content={"celsius": 18}) for c in calls]

    return model, run_conversation(conversation, complete, run_tools or run, None)


def test_required_applies_to_the_first_turn_and_the_allowed_set_is_kept() -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    model, run = drive([weather(), "18 °C."], tool_choice=named)
    first, second = (request.tool_choice for request in model.requests)
    assert first == ToolChoice(mode="required", allowed=("get_weather",))
    assert second == ToolChoice(mode="auto", allowed=("get_weather",))
    assert (run.final, run.stop_reason, run.steps) == ("18 °C.", "final_answer", 2)


def test_the_last_step_must_answer_and_calls_made_anyway_do_not_run() -> None:
    ran: list[ToolCall] = []

    def run_tools(calls):
        ran.extend(calls)
        return [ToolResult(call_id=c.id, name=c.name, content=1) for c in calls]

    asked = [Message(role="user", content="Weather in Oslo, then Rome, then Lima?")]
    model, run = drive(
        [weather("Oslo"), weather("Rome"), weather("Lima")],
        max_steps=3,
        run_tools=run_tools,
        messages=asked,
    )
    assert modes(model) == ["auto", "auto", "none"]
    assert [dict(c.arguments)["city"] for c in ran] == ["Oslo", "Rome"]
    assert (run.stop_reason, run.final) == ("max_steps", None)


def test_unusable_output_is_fed_back_and_counts_as_a_step() -> None:
    def garbled(messages, tools):
        raise ModelOutputError("arguments are not JSON", raw='{"name": "get_wea')

    model, run = drive([garbled, "Sorry: 18 °C."])
    assert (run.final, run.steps) == ("Sorry: 18 °C.", 2)
    feedback = model.requests[1].messages[-1]
    assert feedback.role == "user" and "arguments are not JSON" in str(feedback.content)


def test_a_repeated_call_is_not_run_again_and_the_model_is_asked_to_answer() -> None:
    model, run = drive([weather(), weather(), "It is 18 °C."])
    assert modes(model) == ["auto", "auto", "none"]
    assert len(run.tool_results) == 1 and run.final == "It is 18 °C."
    assert run.steps == 2  # the re-ask is part of the step that repeated
    assert any(isinstance(e, CallsRepeated) for e in run.events)


def test_repeats_are_counted_from_the_history_since_the_last_user_message() -> None:
    # A client that runs its own tools sends the result back; the same call again is a repeat.
    asked = [Message(role="user", content="Weather in Paris?")]
    history = [
        *asked,
        weather(call_id="c1").to_message(),
        Message(role="tool", content='{"celsius": 18}', tool_call_id="c1", name="get_weather"),
    ]
    model, run = drive([weather(), "18 °C in Paris."], messages=history)
    assert modes(model) == ["auto", "none"] and run.final == "18 °C in Paris."
    # After a new user message the same call is a new request, and runs.
    again = [*history, Message(role="assistant", content="18 °C."), *asked]
    model, run = drive([weather(), "Still 18 °C."], messages=again)
    assert modes(model) == ["auto", "auto"] and len(run.tool_results) == 1


def test_the_same_function_with_invented_arguments_is_a_repeat() -> None:
    asked = [Message(role="user", content="Weather in Paris?")]

    def history(result: str) -> list[Message]:
        return [
            *asked,
            weather(call_id="c1").to_message(),
            Message(role="tool", content=result, tool_call_id="c1", name="get_weather"),
        ]

    # After a good result, other arguments the user never gave are no new request.
    model, run = drive([weather("Lyon"), "18 °C in Paris."], messages=history('{"celsius": 18}'))
    assert modes(model) == ["auto", "none"] and list(run.tool_results) == []
    # After an error result, trying again with other arguments is allowed.
    for error in ("Error: ValueError: unknown city", '{"error": "unknown city"}'):
        model, run = drive([weather("Paris, FR"), "18 °C."], messages=history(error))
        assert modes(model) == ["auto", "auto"] and len(run.tool_results) == 1


def test_a_call_the_request_still_needs_is_not_a_repeat() -> None:
    # Paris answered; London is in the request and no call used it yet: it runs.
    asked = [Message(role="user", content="Weather in Paris and in London?")]
    history = [
        *asked,
        weather(call_id="c1").to_message(),
        Message(role="tool", content='{"celsius": 18}', tool_call_id="c1", name="get_weather"),
    ]
    model, run = drive([weather("London"), "18 °C and 18 °C."], messages=history)
    assert modes(model) == ["auto", "auto"]
    assert [dict(c.arguments)["city"] for c in run.tool_calls] == ["London"]


def convert_currency(amount: float, from_currency: str, to_currency: str) -> str:
    """Convert an amount of money from one currency to another (ISO codes).

    Args:
        amount: The amount.
        from_currency: Its currency.
        to_currency: The currency wanted.
    """
    return f"{amount * 0.92:.2f} {to_currency}"


def find_user(name: str) -> dict:
    """Find a user account by name.

    Args:
        name: The user's name.
    """
    return {"user_id": 17}


def list_orders(user_id: int) -> list:
    """List the orders a user has placed.

    Args:
        user_id: The user's id.
    """
    return []


AGENT_TOOLS = ToolSet([get_weather, convert_currency, find_user, list_orders])


def after(request: str, call: ToolCall, result: str) -> list[Message]:
    return [
        Message(role="user", content=request),
        AssistantTurn(tool_calls=(replace(call, id="c1"),)).to_message(),
        Message(role="tool", content=result, tool_call_id="c1", name=call.name),
    ]


def test_another_function_the_request_never_asked_for_is_answered_instead() -> None:
    # Seen on the real model under LangGraph: after the weather result it converted the
    # result's temperature with convert_currency (values from the result, none from the request).
    history = after(
        "What is the weather like in Paris right now?",
        ToolCall(name="get_weather", arguments={"city": "Paris"}),
        "It is 23 degrees Celsius and sunny in Paris.",
    )
    unasked = ToolCall(
        name="convert_currency",
        arguments={"amount": 23, "from_currency": "Celsius", "to_currency": "Fahrenheit"},
    )
    script = [AssistantTurn(tool_calls=(unasked,)), "23 °C and sunny."]
    model, run = drive(script, messages=history, tools=AGENT_TOOLS)
    assert modes(model) == ["auto", "none"] and list(run.tool_results) == []
    assert run.final == "23 °C and sunny."


def test_another_function_the_request_asks_for_still_runs() -> None:
    # A value the request gave and no call used yet: the second part of the request.
    weather_done = ToolCall(name="get_weather", arguments={"city": "Paris"})
    history = after("Weather in Paris, and 100 EUR in USD?", weather_done, '{"celsius": 18}')
    convert = ToolCall(
        name="convert_currency",
        arguments={"amount": 100, "from_currency": "EUR", "to_currency": "USD"},
    )
    model, run = drive(
        [AssistantTurn(tool_calls=(convert,)), "ok"], messages=history, tools=AGENT_TOOLS
    )
    assert modes(model) == ["auto", "auto"] and [c.name for c in run.tool_calls] == [
        "convert_currency"
    ]
    # A chain: the only value comes from the first result, but the request names the orders.
    history = after(
        "Show me alice's orders.",
        ToolCall(name="find_user", arguments={"name": "alice"}),
        '{"user_id": 17}',
    )
    orders = ToolCall(name="list_orders", arguments={"user_id": 17})
    model, run = drive(
        [AssistantTurn(tool_calls=(orders,)), "none"], messages=history, tools=AGENT_TOOLS
    )
    assert modes(model) == ["auto", "auto"] and [c.name for c in run.tool_calls] == ["list_orders"]


def test_parallel_false_keeps_the_first_call() -> None:
    two = AssistantTurn(tool_calls=(*weather("Oslo").tool_calls, *weather("Rome").tool_calls))
    _, run = drive([two, "done"], parallel=False)
    assert [dict(c.arguments)["city"] for c in run.tool_calls] == ["Oslo"]


def test_excluded_calls_never_run_and_the_model_reads_why() -> None:
    turn = AssistantTurn(tool_calls=(ToolCall(name="delete_everything"), *weather().tool_calls))
    ran: list[str] = []

    def run_tools(calls):
        ran.extend(c.name for c in calls)
        return [ToolResult(call_id=c.id, name=c.name, content=1) for c in calls]

    named = {"type": "function", "function": {"name": "get_weather"}}
    _, run = drive([turn, "ok"], tool_choice=named, run_tools=run_tools)
    assert ran == ["get_weather"]
    refused, done = run.tool_results
    assert refused.error == (
        "PermissionDenied: call to 'delete_everything' was not run: this request allows only: "
        "get_weather"
    )
    assert done.ok


def test_calls_handed_back_end_the_run() -> None:
    _, run = drive([weather()], run_tools=lambda calls: None)
    assert run.stop_reason == "tool_calls"
    assert [c.name for c in run.pending_calls] == ["get_weather"]
    assert [c.name for c in run.tool_calls] == ["get_weather"]  # once, not twice


def test_the_calls_are_announced_before_they_run() -> None:
    """A client showing progress (``fncall chat`` prints "call ...") hears of the calls before
    a slow tool runs, not after it returned."""
    seen: list[object] = []

    def run_tools(calls):
        announced = [e for e in seen if isinstance(e, ToolCallsStarted)]
        assert announced and announced[-1].calls[0].name == calls[0].name
        assert not any(isinstance(e, ToolResultsReady) for e in seen[seen.index(announced[-1]) :])
        return [ToolResult(call_id=c.id, name=c.name, content={"celsius": 18}) for c in calls]

    model = ScriptedChat([weather(), "18 °C."])
    conversation = ToolConversation(
        [Message(role="user", content="Weather in Paris?")], TOOLS.tools, max_steps=4
    )
    run = run_conversation(
        conversation, lambda ask: ask.send(model.complete), run_tools, seen.append
    )
    assert run.final == "18 °C." and [c.name for c in run.tool_calls] == ["get_weather"]


def test_bad_arguments() -> None:
    with pytest.raises(UserError, match="max_steps must be a positive integer, got 0"):
        ToolConversation([], [], max_steps=0)


# -- every caller: tool_choice="required" over two steps ends in a text answer ------------------


def required_script() -> list:
    return [weather(), "It is 18 °C in Paris."]


def test_chat_required_then_answer() -> None:
    model = ScriptedChat(required_script())
    chat("Weather in Paris?", TOOLS, model=model, tool_choice="required")  # max_steps=2
    assert modes(model) == ["required", "none"]  # its second step is its last: an answer
    model = ScriptedChat(required_script())
    result = chat("Weather in Paris?", TOOLS, model=model, tool_choice="required", max_steps=4)
    assert modes(model) == ["required", "auto"]
    assert result.text == "It is 18 °C in Paris." and result.results[0].content["celsius"] == 18


def test_agent_required_then_answer() -> None:
    model = ScriptedChat(required_script())
    run = Agent(model, TOOLS, tool_choice="required").run("Weather in Paris?")
    assert modes(model) == ["required", "auto"] and run.final == "It is 18 °C in Paris."
    model = ScriptedChat(required_script())
    run = asyncio.run(Agent(model, TOOLS, tool_choice="required").arun("Weather in Paris?"))
    assert modes(model) == ["required", "auto"] and run.final == "It is 18 °C in Paris."


def test_cli_chat_required_then_answer() -> None:
    model = ScriptedChat(required_script())
    out = io.StringIO()
    history = cli_turn(
        model,
        [Message(role="user", content="Weather?")],
        TOOLS,
        ToolChoice(mode="required"),
        4,
        out,
    )
    assert modes(model) == ["required", "auto"]
    assert history[-1].content == "It is 18 °C in Paris."
    assert 'call    get_weather({"city": "Paris"})' in out.getvalue()


@pytest.fixture
def server_model() -> Iterator[tuple[ScriptedChat, openai.OpenAI]]:
    model = ScriptedChat(chunk_size=3)
    app = create_app(model, model_name=MODEL, tools=TOOLS.tools, execute_tools=True)
    with BackgroundServer(app) as server:
        yield model, openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_server_required_then_answer(server_model, stream: bool) -> None:
    model, client = server_model
    model.enqueue(*required_script())
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        chunks = list(
            client.chat.completions.create(
                model=MODEL, messages=ask, tool_choice="required", stream=True
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
        executed = [c.model_extra.get("fncall_executed_messages") for c in chunks]
        executed = [m for m in executed if m]
        assert [[m["role"] for m in step] for step in executed] == [["assistant", "tool"]]
    else:
        reply = client.chat.completions.create(model=MODEL, messages=ask, tool_choice="required")
        text, finish = reply.choices[0].message.content, reply.choices[0].finish_reason
        executed = reply.model_extra["fncall_executed_messages"]
        assert [m["role"] for m in executed] == ["assistant", "tool"]
        assert json.loads(executed[1]["content"]) == {"city": "Paris", "celsius": 18}
    assert modes(model) == ["required", "auto"]
    assert (text, finish) == ("It is 18 °C in Paris.", "stop")


@pytest.mark.parametrize("stream", [False, True])
def test_server_answers_a_repeated_client_side_call(stream: bool) -> None:
    """An agent framework runs the tool and sends the result back; a model that calls the same
    tool again is asked to answer instead, so the framework's loop ends."""
    model = ScriptedChat([weather(), "It is 18 °C in Paris."], chunk_size=3)
    schema = [Tool(name="get_weather", parameters=dict(WEATHER.parameters)).to_openai()]
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        weather(call_id="call_1").to_message().to_openai(),
        {"role": "tool", "tool_call_id": "call_1", "content": '{"celsius": 18}'},
    ]
    with BackgroundServer(create_app(model, model_name=MODEL)) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model=MODEL, messages=history, tools=schema, stream=stream
        )
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in reply if c.choices)
        else:
            text = reply.choices[0].message.content
    assert text == "It is 18 °C in Paris." and modes(model) == ["auto", "none"]


def test_a_tool_set_runs_once_per_call_in_the_loop() -> None:
    """RunCalls is the only way calls reach tools: one request per turn with calls."""
    requests: list[RunCalls] = []
    conversation = ToolConversation(
        [Message(role="user", content="Weather?")], TOOLS.tools, max_steps=3
    )
    steps = conversation.steps()
    item = next(steps)
    assert isinstance(item, AskModel) and item.step == 1
    item = steps.send(weather())
    while not isinstance(item, RunCalls):
        item = steps.send(None)
    requests.append(item)
    item = steps.send([ToolResult(call_id=item.calls[0].id, name="get_weather", content=1)])
    while not isinstance(item, AskModel):
        item = steps.send(None)
    assert item.step == 2 and item.messages[-1].role == "tool" and len(requests) == 1
