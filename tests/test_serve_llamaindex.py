"""LlamaIndex, unchanged, against ``fncall serve`` with scripted models (issue 21).

LlamaIndex's OpenAI LLM classes (``llama-index-llms-openai``, ``-openai-like``) require
``openai<3``, which this environment cannot have beside ``openai`` 3 (the Agents SDK and
pydantic-ai need it), so LlamaIndex reaches the server through ``llama-index-llms-litellm``
with an ``openai/`` model and ``api_base``. litellm decides whether a model calls functions
from its model list, so a served model is registered once (``litellm.register_model``), as a
LlamaIndex user of any OpenAI-compatible server does. ``FunctionAgent`` streams each turn and
runs the tool; ``structured_predict`` returns a pydantic object (by a tool call, LlamaIndex's
way with a function-calling LLM).
"""

from __future__ import annotations

import asyncio
import os

import pytest

from fncall.engine.scripted import ScriptedChat
from serve_frameworks_support import (
    ANSWER,
    LITELLM_TYPED_DICT_WARNING,
    MODEL,
    WEATHER_JSON,
    Weather,
    internet_blocked,  # noqa: F401 (a fixture, used by name)
    loopback_only,
    paris_call,
    serve,
    weather_report,
)

# litellm fetches its model price list from GitHub at import unless told to use its own copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
with loopback_only() as tried_on_import:
    pytest.importorskip("llama_index.core")
    pytest.importorskip("llama_index.llms.litellm")
    import litellm
    from llama_index.core.agent.workflow import AgentStream, FunctionAgent
    from llama_index.core.prompts import PromptTemplate
    from llama_index.llms.litellm import LiteLLM
assert tried_on_import == [], tried_on_import

pytestmark = [
    pytest.mark.usefixtures("internet_blocked"),
    pytest.mark.filterwarnings(LITELLM_TYPED_DICT_WARNING),
    # the agent workflow inspects pydantic models' members, deprecated attributes included
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecationWarning"),
]
litellm.telemetry = False
litellm.register_model(
    {
        f"openai/{MODEL}": {
            "litellm_provider": "openai",
            "mode": "chat",
            "supports_function_calling": True,
            "max_input_tokens": 32768,
            "max_tokens": 4096,
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
        }
    }
)


def llm(base_url: str) -> LiteLLM:
    return LiteLLM(model=f"openai/{MODEL}", api_base=base_url, api_key="x")


def test_function_agent_streams_calls_the_tool_then_answers() -> None:
    model = ScriptedChat(chunk_size=3).enqueue(paris_call(), ANSWER)
    ran: list[str] = []

    def get_weather(city: str) -> str:
        """Current weather for a city."""
        ran.append(city)
        return weather_report(city)

    async def run(base_url: str) -> tuple[str, list[str]]:
        handler = FunctionAgent(tools=[get_weather], llm=llm(base_url)).run("Weather in Paris?")
        deltas = [
            event.delta async for event in handler.stream_events() if isinstance(event, AgentStream)
        ]
        return str(await handler), deltas

    with serve(model) as server:
        answer, deltas = asyncio.run(run(server.base_url))
    assert answer == ANSWER
    assert "".join(deltas) == ANSWER and len(deltas) > 1
    assert ran == ["Paris"]
    seen = model.requests[1].messages
    assert [m.role for m in seen[-3:]] == ["user", "assistant", "tool"]
    assert seen[-1].content == WEATHER_JSON
    assert all(request.streamed for request in model.requests)
    assert set(server.paths) == {"/v1/chat/completions"}


def test_structured_predict_returns_the_object() -> None:
    model = ScriptedChat().enqueue(paris_call("Weather", city="Paris", celsius=21))
    with serve(model) as server:
        weather = llm(server.base_url).structured_predict(
            Weather, PromptTemplate("What is the weather in {city}?"), city="Paris"
        )
    assert weather == Weather(city="Paris", celsius=21)
    assert [tool.name for tool in model.requests[0].tools] == ["Weather"]
    assert "Paris" in (model.requests[0].messages[-1].content or "")
