"""The OpenAI Agents SDK on the real default model through ``fncall serve`` (loopback HTTP).

The SDK runs its own loop over the Responses API (its default for a model given by name): it
runs the tool the model called, sends the result back and asks again, until an answer without
calls or ``max_turns``. The two-step task (call the tool, then answer from its result) must end
in an answer that uses the result, well inside the turn limit.

The agent has no instructions, as in the LangGraph test: with "You are a helpful assistant." as
its system message and the SDK's tool schemas (pydantic's, with titles), the 0.5B model answers
that it has no real-time data instead of calling the tool (seen on 2026-12-05).
"""

from __future__ import annotations

import asyncio

import pytest

from serve_frameworks_support import internet_blocked  # noqa: F401 (a fixture, used by name)

pytest.importorskip("llama_cpp")
pytest.importorskip("agents")

from agents import (
    Agent,
    ModelSettings,
    RunConfig,
    Runner,
    RunResult,
    function_tool,
    set_tracing_disabled,
)
from agents.items import ToolCallItem
from agents.models.openai_provider import OpenAIProvider
from openai import AsyncOpenAI

from fncall.engine import load_engine
from fncall.pipeline import LocalChat
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer

set_tracing_disabled(True)
pytestmark = [pytest.mark.model, pytest.mark.usefixtures("internet_blocked")]


def test_agents_sdk_runner_finishes_with_an_answer_from_the_result() -> None:
    ran: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city.

        Args:
            city: City name, e.g. "Paris".
        """
        ran.append(city)
        return f"It is 23 degrees Celsius and sunny in {city}."

    @function_tool
    def convert_currency(amount: float, from_currency: str, to_currency: str) -> str:
        """Convert an amount of money from one currency to another (ISO codes)."""
        return f"{amount * 0.92:.2f} {to_currency}"

    agent = Agent(
        name="assistant",
        model="qwen",
        tools=[get_weather, convert_currency],
        model_settings=ModelSettings(temperature=0, max_tokens=96),
    )

    async def ask(base_url: str) -> RunResult:
        async with AsyncOpenAI(base_url=base_url, api_key="unused") as client:
            config = RunConfig(
                model_provider=OpenAIProvider(openai_client=client), tracing_disabled=True
            )
            return await Runner.run(
                agent,
                "What is the weather like in Paris right now?",
                max_turns=4,
                run_config=config,
            )

    model = LocalChat(load_engine("qwen2.5-coder-0.5b"), max_tokens=128)
    with BackgroundServer(create_app(model, model_name="qwen")) as server:
        result = asyncio.run(ask(f"{server.base_url}/v1"))
    calls = [item.raw_item for item in result.new_items if isinstance(item, ToolCallItem)]
    assert [getattr(call, "name", None) for call in calls] == ["get_weather"], result.new_items
    assert [city.lower() for city in ran] == ["paris"]
    assert isinstance(result.final_output, str)
    assert "23" in result.final_output, result.final_output
