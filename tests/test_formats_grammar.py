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
