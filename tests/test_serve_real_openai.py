"""The official ``openai`` client against ``fncall serve`` on the real default model (loopback).

What a user of the SDK does first: a call with tools (plain and streamed), a structured answer
through ``parse``, and the Responses API's call -> output -> answer. The model is real, so the
assertions are what the grammar and the loop guarantee (a call of the offered function with
valid arguments, an answer the schema accepts) plus the one fact the tool result gives.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from pydantic import BaseModel

pytest.importorskip("llama_cpp")

from fncall.engine import load_engine
from fncall.pipeline import LocalChat
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer

pytestmark = pytest.mark.model
MODEL = "qwen"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}
ASK = "What is the weather like in Paris right now?"


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    model = LocalChat(load_engine("qwen2.5-coder-0.5b"), max_tokens=96)
    with BackgroundServer(create_app(model, model_name=MODEL)) as server:
        yield openai.OpenAI(
            base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=600
        )


def test_chat_completions_call_the_offered_function(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": ASK}], tools=[WEATHER], temperature=0
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"].lower() == "paris"
    assert reply.usage is not None and reply.usage.prompt_tokens > 50

    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": ASK}],
            tools=[WEATHER],
            temperature=0,
            stream=True,
        )
    )
    pieces = [t for c in chunks if c.choices for t in (c.choices[0].delta.tool_calls or [])]
    arguments = "".join(p.function.arguments or "" for p in pieces if p.function)
    assert pieces[0].function is not None and pieces[0].function.name == "get_weather"
    assert json.loads(arguments) == json.loads(call.function.arguments)  # same greedy call


def test_parse_returns_an_object_of_the_schema(client: openai.OpenAI) -> None:
    reply = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Ada Lovelace was 36. Give her name and age."}],
        response_format=Person,
        temperature=0,
    )
    person = reply.choices[0].message.parsed
    assert isinstance(person, Person)  # valid by construction: the grammar wrote it
    assert "ada" in person.name.lower()


def test_responses_call_then_answer_from_the_output(client: openai.OpenAI) -> None:
    tool = {"type": "function", **WEATHER["function"]}
    first = client.responses.create(model=MODEL, input=ASK, tools=[tool], temperature=0)
    calls = [item for item in first.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].arguments)["city"].lower() == "paris"
    result = {"city": "Paris", "temperature_c": 23, "sky": "sunny"}
    second = client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": ASK},
            *[c.model_dump() for c in calls],
            {
                "type": "function_call_output",
                "call_id": calls[0].call_id,
                "output": json.dumps(result),
            },
        ],
        tools=[tool],
        temperature=0,
    )
    assert not [item for item in second.output if item.type == "function_call"]
    assert "23" in second.output_text, second.output_text
