"""LangChain and LangGraph, unchanged, against ``fncall serve`` with scripted models (issue 21):
tools, structured output by their default method (``response_format`` json_schema), and the
Responses API (``use_responses_api=True``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import BaseModel, Field

from fncall.engine.scripted import ScriptedChat, ScriptedEngine
from fncall.pipeline import LocalChat
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer
from fncall.types import AssistantTurn, ToolCall

pytest.importorskip("langchain_openai")
pytest.importorskip("langgraph")

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent

# langgraph 1.x still ships create_react_agent (its replacement lives in the langchain package)
pytestmark = pytest.mark.filterwarnings("ignore:create_react_agent has been moved")
MODEL = "scripted-test"


class Weather(BaseModel):
    """The weather in a city."""

    city: str = Field(description="The city")
    celsius: int = Field(description="Temperature in degrees Celsius")


@tool
def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: The city name.
    """
    return json.dumps({"city": city, "celsius": 21})


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedChat, str]]:
    model = ScriptedChat(chunk_size=3)
    with BackgroundServer(create_app(model, model_name=MODEL)) as server:
        yield model, server.base_url + "/v1"


def paris_call(call_id: str = "call_1") -> AssistantTurn:
    return AssistantTurn(
        tool_calls=(ToolCall(name="get_weather", arguments={"city": "Paris"}, id=call_id),)
    )


@pytest.mark.parametrize("responses_api", [False, True])
def test_langgraph_react_agent_two_steps(
    scripted: tuple[ScriptedChat, str], responses_api: bool
) -> None:
    model, base_url = scripted
    model.enqueue(paris_call(), "It is 21 C in Paris.")
    llm = ChatOpenAI(
        model=MODEL,
        base_url=base_url,
        api_key="x",
        max_retries=0,
        temperature=0,
        use_responses_api=responses_api,
    )
    agent = create_react_agent(llm, [get_weather])
    result = agent.invoke({"messages": [HumanMessage("Weather in Paris?")]})
    assert result["messages"][-1].text == "It is 21 C in Paris."
    seen = model.requests[1].messages
    assert [m.role for m in seen] == ["user", "assistant", "tool"]
    assert json.loads(seen[2].content or "") == {"city": "Paris", "celsius": 21}


@pytest.mark.parametrize("responses_api", [False, True])
def test_langchain_streaming_tool_call(
    scripted: tuple[ScriptedChat, str], responses_api: bool
) -> None:
    model, base_url = scripted
    model.enqueue(paris_call())
    llm = ChatOpenAI(
        model=MODEL, base_url=base_url, api_key="x", use_responses_api=responses_api
    ).bind_tools([get_weather])
    chunks = list(llm.stream("Weather in Paris?"))
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    (call,) = merged.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"}


@pytest.mark.parametrize("responses_api", [False, True])
def test_langchain_with_structured_output_under_the_grammar(responses_api: bool) -> None:
    engine = ScriptedEngine(['{"city": "Paris", "celsius": 21}'])
    chat = LocalChat(engine, format="json", judge=None)
    with BackgroundServer(create_app(chat, model_name=MODEL)) as server:
        llm = ChatOpenAI(
            model=MODEL,
            base_url=server.base_url + "/v1",
            api_key="x",
            max_retries=0,
            use_responses_api=responses_api,
        )
        answer = llm.with_structured_output(Weather).invoke("Weather in Paris?")
    assert answer == Weather(city="Paris", celsius=21)
    assert engine.requests[0].constraint is not None


def test_langchain_usage_metadata(scripted: tuple[ScriptedChat, str]) -> None:
    model, base_url = scripted
    model.enqueue(AssistantTurn(content="Hi.", prompt_tokens=12, completion_tokens=2))
    reply = ChatOpenAI(model=MODEL, base_url=base_url, api_key="x").invoke("Hello")
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == 12
    assert reply.usage_metadata["output_tokens"] == 2
