"""pydantic-ai, unchanged, against ``fncall serve`` with scripted models (issue 21): an ``Agent``
over ``OpenAIChatModel`` (chat completions) and ``OpenAIResponsesModel`` (Responses API) runs a
tool and answers from its result, streams its answer, and returns structured output by
``NativeOutput`` and ``PromptedOutput`` (under the grammar, streamed too) and by its default tool
output."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from fncall.engine.scripted import ScriptedChat
from serve_frameworks_support import (
    ANSWER,
    WEATHER_JSON,
    Weather,
    grammar_chat,
    internet_blocked,  # noqa: F401 (a fixture, used by name)
    paris_call,
    serve,
    weather_report,
)

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, NativeOutput, PromptedOutput
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

pytestmark = pytest.mark.usefixtures("internet_blocked")
APIS = {
    "chat": (OpenAIChatModel, "/v1/chat/completions"),
    "responses": (OpenAIResponsesModel, "/v1/responses"),
}


def model_for(api: str, base_url: str) -> Any:
    model_class, _ = APIS[api]
    return model_class("scripted-test", provider=OpenAIProvider(base_url=base_url, api_key="x"))


def weather_agent(api: str, base_url: str, ran: list[str]) -> Agent[None, str]:
    def get_weather(city: str) -> str:
        """Current weather for a city.

        Args:
            city: The city name.
        """
        ran.append(city)
        return weather_report(city)

    return Agent(model_for(api, base_url), tools=[get_weather])


@pytest.mark.parametrize("api", APIS)
def test_agent_calls_the_tool_then_answers_from_its_result(api: str) -> None:
    model = ScriptedChat(chunk_size=3).enqueue(paris_call(), ANSWER)
    ran: list[str] = []
    with serve(model) as server:
        result = weather_agent(api, server.base_url, ran).run_sync("Weather in Paris?")
    assert result.output == ANSWER
    assert ran == ["Paris"]
    seen = model.requests[1].messages
    assert [m.role for m in seen] == ["user", "assistant", "tool"]
    assert seen[2].content == WEATHER_JSON
    assert set(server.paths) == {APIS[api][1]}


@pytest.mark.parametrize("api", APIS)
def test_agent_streams_the_answer_after_the_tool(api: str) -> None:
    model = ScriptedChat(chunk_size=3).enqueue(paris_call(), ANSWER)
    ran: list[str] = []

    async def stream(agent: Agent[None, str]) -> list[str]:
        async with agent.run_stream("Weather in Paris?") as run:
            return [delta async for delta in run.stream_text(delta=True, debounce_by=None)]

    with serve(model) as server:
        deltas = asyncio.run(stream(weather_agent(api, server.base_url, ran)))
    assert "".join(deltas) == ANSWER
    assert len(deltas) > 1  # the scripted model sends 3-character pieces
    assert ran == ["Paris"]
    assert all(request.streamed for request in model.requests)


@pytest.mark.parametrize("output", [NativeOutput, PromptedOutput], ids=["native", "prompted"])
@pytest.mark.parametrize("api", APIS)
def test_structured_output_is_generated_under_the_grammar(api: str, output: Any) -> None:
    # NativeOutput sends the schema as response_format / text.format; PromptedOutput puts it in
    # the prompt and asks for a JSON object, which the grammar also enforces.
    chat, engine = grammar_chat(WEATHER_JSON)
    with serve(chat) as server:
        agent = Agent(model_for(api, server.base_url), output_type=output(Weather))
        result = agent.run_sync("Weather in Paris?")
    assert result.output == Weather(city="Paris", celsius=21)
    assert engine.requests[0].constraint is not None


@pytest.mark.parametrize("api", APIS)
def test_native_output_streamed(api: str) -> None:
    chat, engine = grammar_chat(WEATHER_JSON)

    async def stream(agent: Agent[None, Weather]) -> Weather:
        async with agent.run_stream("Weather in Paris?") as run:
            return await run.get_output()

    with serve(chat) as server:
        agent = Agent(model_for(api, server.base_url), output_type=NativeOutput(Weather))
        output = asyncio.run(stream(agent))
    assert output == Weather(city="Paris", celsius=21)
    assert engine.requests[0].constraint is not None
    assert set(server.paths) == {APIS[api][1]}


@pytest.mark.parametrize("api", APIS)
def test_default_tool_output(api: str) -> None:
    # pydantic-ai's default for a model output type: the model calls its final_result tool.
    model = ScriptedChat().enqueue(paris_call("final_result", city="Paris", celsius=21))
    with serve(model) as server:
        result = Agent(model_for(api, server.base_url), output_type=Weather).run_sync("Paris?")
    assert result.output == Weather(city="Paris", celsius=21)
    assert [tool.name for tool in model.requests[0].tools] == ["final_result"]


class Report(BaseModel):
    celsius: int


@pytest.mark.parametrize("api", APIS)
def test_default_tool_output_after_a_tool_call(api: str) -> None:
    # After the tool's result pydantic-ai asks with tool_choice="required" for final_result;
    # the call stands although no word of the request names it (tests/test_serve_framework_
    # regressions.py::test_a_required_call_after_a_result_stands).
    model = ScriptedChat().enqueue(paris_call(), paris_call("final_result", "call_2", celsius=21))
    ran: list[str] = []
    with serve(model) as server:
        agent = weather_agent(api, server.base_url, ran)
        result = agent.run_sync("Weather in Paris?", output_type=Report)
    assert result.output == Report(celsius=21)
    assert ran == ["Paris"]
    modes = [r.tool_choice.mode if r.tool_choice else None for r in model.requests]
    assert modes == ["required", "required"]
