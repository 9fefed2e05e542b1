"""smolagents, unchanged, against ``fncall serve`` with scripted models (issue 21).

``ToolCallingAgent`` over ``OpenAIModel`` runs a tool, then gives its answer through its
``final_answer`` tool, streamed and not; ``CodeAgent`` with structured outputs
(``use_structured_outputs_internally``, a ``response_format`` json_schema of thought and code)
gets its step under the grammar and runs the code. smolagents sends no telemetry.
"""

from __future__ import annotations

import json

import pytest

from fncall.engine.scripted import ScriptedChat
from serve_frameworks_support import (
    ANSWER,
    WEATHER_JSON,
    grammar_chat,
    internet_blocked,  # noqa: F401 (a fixture, used by name)
    paris_call,
    serve,
    weather_report,
)

pytest.importorskip("smolagents")

from smolagents import CodeAgent, OpenAIModel, Tool, ToolCallingAgent, tool

pytestmark = pytest.mark.usefixtures("internet_blocked")


def weather_tool(ran: list[str]) -> Tool:
    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city.

        Args:
            city: The city name.
        """
        ran.append(city)
        return weather_report(city)

    return get_weather


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_tool_calling_agent_calls_the_tool_then_answers(stream: bool) -> None:
    model = ScriptedChat(chunk_size=3).enqueue(
        paris_call(), paris_call("final_answer", "call_2", answer=ANSWER)
    )
    ran: list[str] = []
    with serve(model) as server:
        llm = OpenAIModel("scripted-test", api_base=server.base_url, api_key="x")
        agent = ToolCallingAgent(
            tools=[weather_tool(ran)], model=llm, stream_outputs=stream, verbosity_level=0
        )
        answer = agent.run("Weather in Paris?", max_steps=4)
    assert answer == ANSWER
    assert ran == ["Paris"]
    # smolagents shows a tool's result to the model as a user message, "Observation: ..."
    assert WEATHER_JSON in (model.requests[1].messages[-1].content or "")
    assert [request.streamed for request in model.requests] == [stream, stream]
    assert set(server.paths) == {"/v1/chat/completions"}


def test_code_agent_structured_step_is_generated_under_the_grammar() -> None:
    step = {"thought": "Ask the tool.", "code": "final_answer(get_weather(city='Paris'))"}
    chat, engine = grammar_chat(json.dumps(step))
    ran: list[str] = []
    with serve(chat) as server:
        llm = OpenAIModel("scripted-test", api_base=server.base_url, api_key="x")
        agent = CodeAgent(
            tools=[weather_tool(ran)],
            model=llm,
            use_structured_outputs_internally=True,
            verbosity_level=0,
        )
        answer = agent.run("Weather in Paris?", max_steps=3)
    assert json.loads(answer) == json.loads(WEATHER_JSON)
    assert ran == ["Paris"]
    assert engine.requests[0].constraint is not None
