"""Agent frameworks on the real models through ``fncall serve`` (loopback HTTP).

LangGraph's prebuilt ReAct agent runs its own loop: it sends the tool result back and asks
again. Before rule 4 of the conversation loop reached client-driven loops (and the judge), the
model called the same tool again after every result until LangGraph's recursion limit. Here the
two-step task (call, then answer from the result) must finish well inside the limit, with an
answer that uses the tool's result.
"""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("langgraph")
pytest.importorskip("langchain_openai")

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent

from fncall.engine import load_engine
from fncall.models import DEFAULT_MODEL, FAST_MODEL
from fncall.pipeline import LocalChat
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer

pytestmark = [
    pytest.mark.model,
    # langgraph 1.x still ships create_react_agent (its replacement lives in the langchain package)
    pytest.mark.filterwarnings("ignore:create_react_agent has been moved"),
]
RAN: list[str] = []


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city.

    Args:
        city: City name, e.g. "Paris".
    """
    RAN.append(city)
    return f"It is 23 degrees Celsius and sunny in {city}."


@tool
def convert_currency(amount: float, from_currency: str, to_currency: str) -> str:
    """Convert an amount of money from one currency to another (ISO codes)."""
    return f"{amount * 0.92:.2f} {to_currency}"


@pytest.mark.parametrize("model_name", [FAST_MODEL, DEFAULT_MODEL])
def test_langgraph_react_agent_finishes_with_an_answer_from_the_result(model_name: str) -> None:
    engine = load_engine(model_name)
    try:
        model = LocalChat(engine, max_tokens=128)
        with BackgroundServer(create_app(model, model_name="qwen")) as server:
            llm = ChatOpenAI(
                model="qwen", base_url=f"{server.base_url}/v1", api_key="unused", temperature=0
            )
            agent = create_react_agent(llm, [get_weather, convert_currency])
            RAN.clear()
            state = agent.invoke(
                {"messages": [("user", "What is the weather like in Paris right now?")]},
                {"recursion_limit": 8},
            )
    finally:
        engine.close()
    messages = state["messages"]
    calls = [c for m in messages for c in (getattr(m, "tool_calls", None) or [])]
    assert [c["name"] for c in calls] == ["get_weather"], messages
    assert [city.lower() for city in RAN] == ["paris"]
    final = messages[-1]
    assert final.type == "ai" and not final.tool_calls
    assert "23" in final.content, final.content
