"""Structured outputs (issue 21): ``response_format`` ``json_schema`` and ``json_object``.

A local model answers under a grammar compiled from the schema (``ScriptedEngine`` checks every
scripted text against the constraint it was given, so these tests fail if the grammar is not
applied); another model is asked with the format and its answer is validated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from pydantic import BaseModel

from fncall.constrain import accepts
from fncall.constrain.answer import build_answer_constraint
from fncall.engine.scripted import ScriptedChat, ScriptedEngine
from fncall.errors import UserError
from fncall.pipeline import LocalChat
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer
from fncall.types import AssistantTurn, ToolCall

MODEL = "scripted-test"
ASK = [{"role": "user", "content": "Weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "strict": True,  # the SDK's parse() takes strict tools only
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


class Weather(BaseModel):
    city: str
    celsius: int
    sunny: bool


WEATHER_JSON = '{"city": "Paris", "celsius": 21, "sunny": true}'


def weather_format() -> dict:
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "weather",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "celsius": {"type": "integer"},
                    "sunny": {"type": "boolean"},
                },
                "required": ["city", "celsius", "sunny"],
                "additionalProperties": False,
            },
        },
    }


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def local(engine: ScriptedEngine) -> Iterator[openai.OpenAI]:
    chat = LocalChat(engine, format="json", judge=None)
    with BackgroundServer(create_app(chat, model_name=MODEL)) as server:
        yield openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)


def test_answer_constraint_admits_exactly_the_schema() -> None:
    constraint = build_answer_constraint(Weather.model_json_schema())
    assert accepts(constraint, WEATHER_JSON)
    assert accepts(constraint, '{"city":"Rome","celsius":-3,"sunny":false}')
    assert not accepts(constraint, '{"city": "Paris", "celsius": "21", "sunny": true}')
    assert not accepts(constraint, '{"city": "Paris"}')
    assert not accepts(constraint, "Sure! " + WEATHER_JSON)
    any_object = build_answer_constraint(None)
    assert accepts(any_object, '{"anything": [1, {"goes": null}]}')
    assert not accepts(any_object, "[1, 2]") and not accepts(any_object, "hello")


@pytest.mark.parametrize(
    ("schema", "construct"),
    [
        ({"type": "object", "not": {"required": ["a"]}}, "not"),
        ({"type": "array", "uniqueItems": True}, "uniqueItems"),
        ({"type": "string", "format": "colour"}, "colour"),
        ({"$ref": "https://example.com/schema.json"}, "example.com"),
    ],
)
def test_a_schema_the_grammar_cannot_express_is_named(schema: dict, construct: str) -> None:
    with pytest.raises(UserError, match=construct):
        build_answer_constraint(schema)


def test_parse_with_a_pydantic_model(engine: ScriptedEngine, local: openai.OpenAI) -> None:
    engine.enqueue(WEATHER_JSON)
    reply = local.chat.completions.parse(model=MODEL, messages=ASK, response_format=Weather)
    message = reply.choices[0].message
    assert message.parsed == Weather(city="Paris", celsius=21, sunny=True)
    assert reply.choices[0].finish_reason == "stop"
    (request,) = engine.requests
    assert request.constraint is not None
    assert '"celsius"' in request.prompt  # the model is shown the schema it answers under


def test_json_schema_and_json_object_streamed(engine: ScriptedEngine, local: openai.OpenAI) -> None:
    engine.enqueue(WEATHER_JSON, '{"ok": true}')
    stream = local.chat.completions.create(
        model=MODEL, messages=ASK, response_format=weather_format(), stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert Weather.model_validate_json(text).city == "Paris"
    reply = local.chat.completions.create(
        model=MODEL, messages=ASK, response_format={"type": "json_object"}
    )
    assert json.loads(reply.choices[0].message.content or "") == {"ok": True}
    assert all(r.constraint is not None for r in engine.requests)


def test_tools_and_a_schema(engine: ScriptedEngine, local: openai.OpenAI) -> None:
    """A turn may call a tool; a turn that answers does so under the schema."""
    engine.enqueue('[{"name": "get_weather", "arguments": {"city": "Paris"}}]')
    first = local.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER_TOOL], response_format=weather_format()
    )
    (call,) = first.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    engine.enqueue("It is sunny and 21 degrees.", WEATHER_JSON)
    messages = [
        *ASK,
        first.choices[0].message.model_dump(),
        {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 21, "sunny": true}'},
    ]
    second = local.chat.completions.parse(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], response_format=Weather
    )
    assert second.choices[0].message.parsed == Weather(city="Paris", celsius=21, sunny=True)
    assert second.usage is not None and second.usage.completion_tokens == len(
        "It is sunny and 21 degrees." + WEATHER_JSON
    )


def test_unsupported_schema_is_a_400_naming_it(local: openai.OpenAI) -> None:
    response_format = weather_format()
    response_format["json_schema"]["schema"]["properties"]["city"]["not"] = {"const": "x"}
    with pytest.raises(openai.BadRequestError, match="not") as info:
        local.chat.completions.create(model=MODEL, messages=ASK, response_format=response_format)
    assert info.value.param == "response_format.json_schema.schema"


def test_other_models_are_asked_and_their_answer_checked() -> None:
    model = ScriptedChat()
    with BackgroundServer(create_app(model, model_name=MODEL)) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        model.enqueue(WEATHER_JSON, '{"city": "Paris"}', WEATHER_JSON)
        model.enqueue(AssistantTurn(tool_calls=(CALL,)))
        reply = client.chat.completions.parse(model=MODEL, messages=ASK, response_format=Weather)
        assert reply.choices[0].message.parsed is not None
        # an answer off the schema is fed back to the model, like any unusable output
        again = client.chat.completions.create(
            model=MODEL, messages=ASK, response_format=weather_format(), stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in again if c.choices)
        assert Weather.model_validate_json(text).celsius == 21
        fed_back = model.requests[2].messages[-1].content or ""
        assert "does not follow the 'weather' schema" in fed_back and "celsius" in fed_back
        calls = client.chat.completions.create(
            model=MODEL, messages=ASK, tools=[WEATHER_TOOL], response_format=weather_format()
        )
        assert calls.choices[0].message.tool_calls
    sent = model.requests[0].options["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Weather"


CALL = ToolCall(name="get_weather", arguments={"city": "Paris"}, id="call_1")


def test_a_remote_model_passes_the_format_on(engine: ScriptedEngine) -> None:
    """fncall serve in front of RemoteChat in front of fncall serve with a local model: the
    format reaches the grammar at the far end."""
    from fncall.engine.remote import RemoteChat

    engine.enqueue(WEATHER_JSON)
    far = create_app(LocalChat(engine, format="json", judge=None), model_name=MODEL)
    with BackgroundServer(far) as far_server:
        remote = RemoteChat(far_server.base_url + "/v1", model=MODEL, max_retries=0)
        with BackgroundServer(create_app(remote, model_name="front")) as front:
            client = openai.OpenAI(base_url=front.base_url + "/v1", api_key="x", max_retries=0)
            reply = client.chat.completions.parse(
                model="front", messages=ASK, response_format=Weather
            )
    assert reply.choices[0].message.parsed == Weather(city="Paris", celsius=21, sunny=True)
    assert engine.requests[0].constraint is not None


def test_a_schema_answer_samples_with_top_p(engine: ScriptedEngine, local: openai.OpenAI) -> None:
    engine.enqueue(WEATHER_JSON, WEATHER_JSON)
    local.chat.completions.parse(
        model=MODEL, messages=ASK, response_format=Weather, temperature=0.7, top_p=0.9
    )
    local.chat.completions.parse(model=MODEL, messages=ASK, response_format=Weather, top_p=1.0)
    assert [(r.temperature, r.top_p) for r in engine.requests] == [(0.7, 0.9), (0.0, 1.0)]
