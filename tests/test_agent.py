"""The agent loop, driven by a scripted model."""

from __future__ import annotations

import asyncio

import pytest

from conftest import function_tool
from fncall.engine.scripted import ScriptedChat
from fncall.errors import ModelOutputError, UserError
from fncall.execute import (
    Agent,
    AgentEvent,
    Finished,
    ModelTurn,
    Policy,
    ToolCallsStarted,
    ToolResultsReady,
)
from fncall.types import AssistantTurn, Message, ToolCall, ToolChoice

CITIES = {"Paris": 18, "Oslo": 4}


def get_weather(city: str) -> dict:
    if city not in CITIES:
        raise ValueError(f"unknown city {city!r}; known cities: {', '.join(CITIES)}")
    return {"city": city, "celsius": CITIES[city]}


async def get_time(zone: str) -> str:
    await asyncio.sleep(0)
    return f"12:00 in {zone}"


WEATHER = function_tool("get_weather", get_weather, city={"type": "string"})
TIME = function_tool("get_time", get_time, zone={"type": "string"})


def call(name: str, **arguments) -> AssistantTurn:
    return AssistantTurn(tool_calls=(ToolCall(name=name, arguments=arguments),))


def test_tool_error_is_shown_to_the_model_which_corrects_the_call_and_answers() -> None:
    def retry_after_reading_the_error(messages, tools):
        last = messages[-1]
        assert last.role == "tool" and last.name == "get_weather"
        assert last.content == (
            "Error: ValueError: unknown city 'Pariss'; known cities: Paris, Oslo"
        )
        return call("get_weather", city="Paris")

    def answer_from_the_result(messages, tools):
        assert messages[-1].content == '{"city": "Paris", "celsius": 18}'
        return AssistantTurn(content="It is 18 °C in Paris.")

    model = ScriptedChat(
        [call("get_weather", city="Pariss"), retry_after_reading_the_error, answer_from_the_result]
    )
    seen: list[AgentEvent] = []
    run = Agent(model, [WEATHER, TIME], on_event=seen.append).run("Weather in Paris?")

    assert run.final == "It is 18 °C in Paris."
    assert (run.steps, run.stop_reason) == (3, "final_answer")
    assert [m.role for m in run.messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert run.messages[2].tool_call_id == run.messages[1].tool_calls[0].id
    assert [type(e) for e in run.events] == [
        ModelTurn,
        ToolCallsStarted,
        ToolResultsReady,
        ModelTurn,
        ToolCallsStarted,
        ToolResultsReady,
        ModelTurn,
        Finished,
    ]
    assert seen == list(run.events)
    assert [r.ok for r in run.tool_results] == [False, True]
    assert run.events[-1] == Finished(steps=3, stop_reason="final_answer", final=run.final)
    # The model was shown the tools on every turn.
    assert all([t.name for t in r.tools] == ["get_weather", "get_time"] for r in model.requests)


def test_argument_errors_go_back_to_the_model() -> None:
    model = ScriptedChat(
        [call("get_weather", town="Paris"), call("get_weather", city="Oslo"), "4 °C"]
    )
    run = Agent(model, [WEATHER]).run("Oslo?")
    assert run.final == "4 °C"
    first_result = str(run.messages[2].content)
    assert first_result.startswith("Error: ArgumentError: invalid arguments for 'get_weather'")
    assert "city" in first_result


def test_max_steps_stops_with_a_reason_not_an_exception() -> None:
    cities = ["Oslo", "Paris", "Oslo", "Paris", "Oslo"]
    model = ScriptedChat([call("get_weather", city=c) for c in cities])
    run = Agent(model, [WEATHER], max_steps=3).run("loop forever: Oslo, Paris")
    assert (run.stop_reason, run.steps, run.final) == ("max_steps", 3, None)
    assert len(model.requests) == 3 and model.remaining == 2
    # The last step was asked to answer; the calls it made anyway did not run.
    assert [r.tool_choice.mode for r in model.requests] == ["auto", "auto", "none"]
    assert len(run.tool_results) == 2 and run.messages[-1].role == "assistant"
    assert run.events[-1] == Finished(steps=3, stop_reason="max_steps", final=None)


def test_parallel_calls_in_one_turn_come_back_in_call_order() -> None:
    turn = AssistantTurn(
        tool_calls=(
            ToolCall(name="get_time", arguments={"zone": "UTC"}, id="t1"),
            ToolCall(name="get_weather", arguments={"city": "Oslo"}, id="w1"),
        )
    )
    run = Agent(ScriptedChat([turn, "done"]), [WEATHER, TIME]).run("both please")
    tool_messages = [m for m in run.messages if m.role == "tool"]
    assert [(m.tool_call_id, m.content) for m in tool_messages] == [
        ("t1", "12:00 in UTC"),
        ("w1", '{"city": "Oslo", "celsius": 4}'),
    ]


def test_policy_denial_is_read_by_the_model() -> None:
    model = ScriptedChat([call("get_weather", city="Oslo"), "I may not check the weather."])
    agent = Agent(model, [WEATHER], policy=Policy(rules={"get_*": "ask"}, ask=lambda c: False))
    run = agent.run([{"role": "user", "content": "Oslo?"}])
    assert run.messages[2].content == (
        "Error: PermissionDenied: call to 'get_weather' was not approved (rule 'get_*': ask)"
    )
    assert run.final == "I may not check the weather."


def test_unparseable_model_output_is_fed_back_as_a_step() -> None:
    def garbled(messages, tools):
        raise ModelOutputError("tool call JSON is truncated", raw='{"name": "get_wea')

    model = ScriptedChat([garbled, "Sorry: 4 °C in Oslo."])
    run = Agent(model, [WEATHER]).run("Oslo?")
    assert (run.final, run.steps) == ("Sorry: 4 °C in Oslo.", 2)
    rejected = run.events[0]
    assert isinstance(rejected, ModelTurn) and "truncated" in str(rejected.error)
    feedback = model.requests[1].messages[-1]
    assert feedback.role == "user" and "tool call JSON is truncated" in str(feedback.content)


def test_options_reach_the_model() -> None:
    model = ScriptedChat(["ok"])
    Agent(
        model,
        [WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
        model_options={"temperature": 0.2},
    ).run([Message(role="system", content="be brief"), Message(role="user", content="hi")])
    request = model.requests[0]
    assert request.tool_choice == ToolChoice(mode="required")
    assert request.parallel_tool_calls is False
    assert request.options == {"temperature": 0.2}
    assert [m.role for m in request.messages] == ["system", "user"]


def test_arun() -> None:
    model = ScriptedChat([call("get_time", zone="CET"), "It is noon."])
    events: list[AgentEvent] = []
    run = asyncio.run(Agent(model, [TIME], on_event=events.append).arun("time?"))
    assert run.final == "It is noon." and run.steps == 2
    assert run.messages[2].content == "12:00 in CET"
    assert events == list(run.events)


def test_caller_mistakes() -> None:
    with pytest.raises(UserError, match="max_steps must be a positive integer, got 0"):
        Agent(ScriptedChat(), [WEATHER], max_steps=0)
    with pytest.raises(UserError, match="model must be a ChatModel"):
        Agent(object(), [WEATHER])  # type: ignore[arg-type]
    with pytest.raises(UserError, match="unknown tool"):
        Agent(
            ScriptedChat(), [WEATHER], tool_choice={"type": "function", "function": {"name": "x"}}
        )


def _excluded_tools() -> tuple[list, list[str]]:
    ran: list[str] = []

    def add(a: int, b: int) -> int:
        ran.append("add")
        return a + b

    def delete_everything() -> str:
        ran.append("delete_everything")
        return "deleted"

    tools = [
        function_tool("add", add, a={"type": "integer"}, b={"type": "integer"}),
        function_tool("delete_everything", delete_everything),
    ]
    return tools, ran


@pytest.mark.parametrize(
    "tool_choice",
    [
        {"type": "function", "function": {"name": "add"}},
        ToolChoice(mode="auto", allowed=("add",)),
        ToolChoice(mode="required", allowed=("add",)),
        "none",
    ],
)
def test_a_call_the_request_excluded_never_runs(tool_choice: object) -> None:
    """Issue 20, item 4: with tool_choice naming ``add`` a model that calls
    ``delete_everything`` anyway (any unconstrained or remote model can) must not run it."""
    tools, ran = _excluded_tools()
    both = AssistantTurn(
        tool_calls=(
            ToolCall(name="delete_everything", arguments={}),
            ToolCall(name="add", arguments={"a": 1, "b": 2}),
        )
    )
    model = ScriptedChat([call("delete_everything"), both, "done", "done"])
    run = Agent(model, tools, tool_choice=tool_choice, max_steps=3).run("add 1 and 2")
    assert "delete_everything" not in ran
    refused = [r for r in run.tool_results if r.name == "delete_everything"]
    assert refused and all(
        r.error is not None and r.error.startswith("PermissionDenied") for r in refused
    )


def test_parallel_tool_calls_false_runs_one_call_of_a_turn() -> None:
    tools, ran = _excluded_tools()
    two = AssistantTurn(
        tool_calls=(
            ToolCall(name="add", arguments={"a": 1, "b": 2}),
            ToolCall(name="delete_everything", arguments={}),
        )
    )
    run = Agent(ScriptedChat([two, "done"]), tools, parallel_tool_calls=False).run("add")
    assert ran == ["add"]
    assert [c.name for c in run.tool_calls] == ["add"]


@pytest.mark.parametrize(
    "hostile",
    [
        "[" * 1000 + "]" * 1000,
        '[{"name": "get_weather", "arguments": {"city": ' + "9" * 5001 + "}}]",
    ],
    ids=["1000 nested [", "5001 digits"],
)
def test_hostile_model_output_is_fed_back_not_raised(hostile: str) -> None:
    """Issue 20, item 6: a RecursionError or ValueError from the model's output crashed
    ``Agent.run``; it is a ``ModelOutputError`` the model reads, like any unusable output."""
    from fncall.engine.scripted import ScriptedEngine
    from fncall.pipeline import LocalChat

    engine = ScriptedEngine([hostile, "It is 4 °C in Oslo."])
    model = LocalChat(engine, format="json", constrained=False, judge=None, max_tokens=10_000)
    run = Agent(model, [WEATHER]).run("Oslo?")
    assert (run.final, run.steps) == ("It is 4 °C in Oslo.", 2)
    rejected = run.events[0]
    assert isinstance(rejected, ModelTurn) and rejected.error is not None
    assert rejected.turn.raw == hostile
