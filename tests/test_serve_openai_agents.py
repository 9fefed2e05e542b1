"""The OpenAI Agents SDK, unchanged, against ``fncall serve`` with scripted models (issue 21).

An agent whose model is given by name runs on the Responses API (the SDK's default); with
``use_responses=False`` on chat completions. Each runs a tool and answers from its result
(``Runner.run`` and ``Runner.run_streamed``), and returns an ``output_type`` generated under the
grammar, alone and after a tool. Tracing is off: it would upload spans to OpenAI.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from fncall.engine.scripted import ScriptedChat
from serve_frameworks_support import (
    ANSWER,
    MODEL,
    WEATHER_JSON,
    Weather,
    grammar_chat,
    internet_blocked,  # noqa: F401 (a fixture, used by name)
    paris_call,
    serve,
    weather_report,
)

pytest.importorskip("agents")

from agents import Agent, ModelSettings, RunConfig, Runner, function_tool, set_tracing_disabled
from agents.models.openai_provider import OpenAIProvider
from openai import AsyncOpenAI, BadRequestError

set_tracing_disabled(True)
pytestmark = pytest.mark.usefixtures("internet_blocked")
# use_responses: None is the SDK's default for a model given by name (the Responses API)
APIS = {"responses": (None, "/v1/responses"), "chat": (False, "/v1/chat/completions")}


@asynccontextmanager
async def run_config(api: str, base_url: str) -> AsyncIterator[RunConfig]:
    # A client per run, closed in its event loop (the SDK's default client is one for the whole
    # process, and its pooled connections belong to the loop that opened them).
    async with AsyncOpenAI(base_url=base_url, api_key="x") as client:
        provider = OpenAIProvider(openai_client=client, use_responses=APIS[api][0])
        yield RunConfig(model_provider=provider, tracing_disabled=True)


def run(agent: Agent[Any], api: str, base_url: str, question: str = "Weather in Paris?") -> Any:
    async def go() -> Any:
        async with run_config(api, base_url) as config:
            return await Runner.run(agent, question, run_config=config)

    return asyncio.run(go())


def weather_tool(ran: list[str]) -> Any:
    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city.

        Args:
            city: The city name.
        """
        ran.append(city)
        return weather_report(city)

    return get_weather


def weather_agent(ran: list[str]) -> Agent[None]:
    return Agent(
        name="weather",
        instructions="Answer briefly.",
        model=MODEL,
        tools=[weather_tool(ran)],
        model_settings=ModelSettings(temperature=0, top_p=1.0),
    )


@pytest.mark.parametrize("api", APIS)
def test_runner_calls_the_tool_then_answers_from_its_result(api: str) -> None:
    model = ScriptedChat(chunk_size=3).enqueue(paris_call(), ANSWER)
    ran: list[str] = []
    with serve(model) as server:
        result = run(weather_agent(ran), api, server.base_url)
    assert result.final_output == ANSWER
    assert ran == ["Paris"]
    seen = model.requests[1].messages
    assert [m.role for m in seen] == ["system", "user", "assistant", "tool"]
    assert seen[0].content == "Answer briefly."
    assert json.loads(seen[3].content or "") == json.loads(WEATHER_JSON)
    assert set(server.paths) == {APIS[api][1]}


@pytest.mark.parametrize("api", APIS)
def test_run_streamed_delivers_the_answer_in_pieces(api: str) -> None:
    model = ScriptedChat(chunk_size=3).enqueue(paris_call(), ANSWER)
    ran: list[str] = []

    async def stream(base_url: str) -> tuple[object, list[str]]:
        async with run_config(api, base_url) as config:
            streamed = Runner.run_streamed(weather_agent(ran), "Weather?", run_config=config)
            deltas = [
                event.data.delta
                async for event in streamed.stream_events()
                if event.type == "raw_response_event"
                and event.data.type == "response.output_text.delta"
            ]
            return streamed.final_output, deltas

    with serve(model) as server:
        final, deltas = asyncio.run(stream(server.base_url))
    assert final == ANSWER
    assert "".join(deltas) == ANSWER and len(deltas) > 1
    assert ran == ["Paris"]
    assert all(request.streamed for request in model.requests)


@pytest.mark.parametrize("api", APIS)
def test_output_type_is_generated_under_the_grammar(api: str) -> None:
    chat, engine = grammar_chat(WEATHER_JSON)
    with serve(chat) as server:
        result = run(Agent(name="weather", model=MODEL, output_type=Weather), api, server.base_url)
    assert result.final_output == Weather(city="Paris", celsius=21)
    assert engine.requests[0].constraint is not None
    assert set(server.paths) == {APIS[api][1]}


@pytest.mark.parametrize("api", APIS)
def test_output_type_after_a_tool_call(api: str) -> None:
    # The local model decides (a call in fncall's json format, then a text answer); the text
    # answer is replaced by one written under the output type's schema.
    chat, engine = grammar_chat(
        '{"name": "get_weather", "arguments": {"city": "Paris"}}', ANSWER, WEATHER_JSON
    )
    ran: list[str] = []
    agent = Agent(name="weather", model=MODEL, tools=[weather_tool(ran)], output_type=Weather)
    with serve(chat) as server:
        result = run(agent, api, server.base_url)
    assert result.final_output == Weather(city="Paris", celsius=21)
    assert ran == ["Paris"]
    assert engine.remaining == 0


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ({"auto_previous_response_id": True}, "previous_response_id"),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation_id": "conv_1"}, "conversation"),
    ],
)
def test_server_side_state_is_refused_by_name(option: dict[str, Any], named: str) -> None:
    # The server stores nothing; the SDK's default (its own history sent as input) works above.
    model = ScriptedChat().enqueue(paris_call(), ANSWER)
    ran: list[str] = []

    async def go(base_url: str) -> None:
        async with run_config("responses", base_url) as config:
            await Runner.run(weather_agent(ran), "Weather?", run_config=config, **option)

    with serve(model) as server, pytest.raises(BadRequestError, match=f"^.*{named}: .*not stored"):
        asyncio.run(go(server.base_url))
    # with auto_previous_response_id the first turn is sent whole; the second continues it
    assert ran == (["Paris"] if "auto_previous_response_id" in option else [])


class Leg(BaseModel):
    city: str
    nights: int = Field(ge=1)


class Trip(BaseModel):
    traveller: str
    legs: list[Leg]
    travel_class: Literal["economy", "business"] = "economy"
    note: str | None = None


@pytest.mark.parametrize("api", APIS)
def test_a_strict_nested_tool_schema_is_generated_under_the_grammar(api: str) -> None:
    # The SDK sends strict schemas: $defs and $ref for the nested model, an enum, a nullable
    # field, every property required, additionalProperties false. The local model's call is
    # generated under the grammar compiled from them.
    booked: list[Trip] = []

    @function_tool
    def book(trip: Trip) -> str:
        """Book a trip.

        Args:
            trip: The trip to book.
        """
        booked.append(trip)
        return "booked"

    trip = {
        "traveller": "Ann",
        "legs": [{"city": "Paris", "nights": 2}],
        "travel_class": "business",
        "note": None,
    }
    chat, engine = grammar_chat(
        json.dumps({"name": "book", "arguments": {"trip": trip}}), "Booked."
    )
    agent = Agent(name="travel", model=MODEL, tools=[book])
    with serve(chat) as server:
        result = run(agent, api, server.base_url, "Book Ann two nights in Paris, business.")
    assert result.final_output == "Booked."
    assert booked == [Trip.model_validate(trip)]
    assert engine.requests[0].constraint is not None
