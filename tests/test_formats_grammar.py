"""Prompt and grammar agree: what each format renders is what its grammar admits."""

from __future__ import annotations

import pytest

from fncall.constrain import accepts, build_constraint
from fncall.formats import get_format
from fncall.types import Tool, ToolCall

WEATHER = Tool(
    name="get_weather",
    description="Current weather",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        },
        "required": ["city"],
    },
)
CONVERT = Tool(
    name="convert",
    description="Convert units",
    parameters={
        "type": "object",
        "properties": {"value": {"type": "number"}, "tags": {"type": "array"}},
        "required": ["value"],
    },
)
CALLS = [
    ToolCall(name="get_weather", arguments={"city": 'São Paulo "SP"', "unit": "celsius"}),
    ToolCall(name="convert", arguments={"value": 2.5, "tags": ["a", None, True]}),
]


@pytest.mark.parametrize("syntax", ["json", "hermes", "pythonic", "llama3"])
def test_rendered_calls_satisfy_the_grammar(syntax):
    constraint = build_constraint([WEATHER, CONVERT], tool_choice="auto", syntax=get_format(syntax))
    fmt = get_format(syntax)
    assert accepts(constraint, fmt.render_calls(CALLS))
    assert accepts(constraint, fmt.render_calls(CALLS[:1]))
    single = build_constraint(
        [WEATHER, CONVERT], parallel_tool_calls=False, syntax=get_format(syntax)
    )
    assert accepts(single, fmt.render_calls(CALLS[:1]))
    assert not accepts(single, fmt.render_calls(CALLS))


@pytest.mark.parametrize("syntax", ["json", "hermes", "pythonic", "llama3"])
def test_plain_answers_pass_auto_but_not_required(syntax):
    answer = "I cannot help with that."
    assert accepts(
        build_constraint([WEATHER], tool_choice="auto", syntax=get_format(syntax)), answer
    )
    assert not accepts(
        build_constraint([WEATHER], tool_choice="required", syntax=get_format(syntax)), answer
    )


def test_pythonic_prose_cannot_open_with_a_json_object():
    """The default model once answered a LangGraph agent's weather question by copying the
    tool's JSON schema: a "{" the pythonic grammar took for prose (tests/test_frameworks_real)."""
    constraint = build_constraint([WEATHER], tool_choice="auto", syntax=get_format("pythonic"))
    assert not accepts(constraint, '{"type": "function", "function": {"name": "get_weather"}}')
    assert accepts(constraint, "It is sunny {or so I hear}.")
    assert accepts(constraint, '[get_weather(city="Paris")]')


DRINK = Tool(
    name="change_drink",
    description="Change a drink order",
    parameters={
        "type": "object",
        "properties": {
            "preferences": {  # a nested object with properties: open to other keys
                "type": "object",
                "properties": {
                    "size": {"type": "string", "enum": ["small", "large"]},
                    "temperature": {"type": "string", "enum": ["cold", "warm", "hot"]},
                },
            }
        },
        "required": ["preferences"],
    },
)


@pytest.mark.parametrize("syntax", ["json", "hermes", "pythonic", "llama3"])
def test_a_declared_key_never_passes_as_an_undeclared_one(syntax):
    """BFCL live_multiple_0-0-0 on the 1.5B: after an undeclared key, the pythonic grammar took
    the declared "temperature" as one more undeclared key, with any value ("boiling hot"), and
    the validator then refused the call. Undeclared keys are what the schema does not name."""
    fmt = get_format(syntax)
    constraint = build_constraint([DRINK], tool_choice="required", syntax=fmt)

    def call(preferences: dict) -> str:
        arguments = {"preferences": preferences}
        return fmt.render_calls([ToolCall(name="change_drink", arguments=arguments)])

    assert accepts(constraint, call({"size": "large", "temperature": "hot"}))
    assert accepts(constraint, call({"size": "large", "milk": "soy"}))
    late = {"size": "large", "milk": "soy", "temperature": "boiling hot"}
    assert not accepts(constraint, call(late))
    assert not accepts(constraint, call({"temperature": "boiling hot"}))


def test_a_declared_key_spelled_with_escapes_is_no_undeclared_key_either():
    constraint = build_constraint([DRINK], tool_choice="required", syntax=get_format("pythonic"))
    head = '[change_drink(preferences={"size": "large", '
    assert accepts(constraint, head + '"milk \\"oat\\"": "yes"})]')
    for spelling in ('"temp\\u0065rature"', '"temp\\x65rature"', '"\\u0074emperature"'):
        assert not accepts(constraint, head + spelling + ': "boiling hot"})]')
    # Where nothing is declared, keys keep every escape Python allows.
    free = Tool(
        name="tag",
        description="Tag",
        parameters={"type": "object", "properties": {"tags": {"type": "object"}}},
    )
    assert accepts(
        build_constraint([free], tool_choice="required", syntax=get_format("pythonic")),
        '[tag(tags={"temp\\u0065rature": 1})]',
    )
