"""Every format writes calls that it reads back unchanged (names, arguments, order)."""

from __future__ import annotations

import json
import keyword
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fncall.errors import UserError
from fncall.formats import (
    BaseFormat,
    format_names,
    get_format,
    register_format,
    unregister_format,
)
from fncall.types import AssistantTurn, Tool, ToolCall

FORMATS = ["hermes", "json", "llama3", "pythonic", "pythonic-compact"]

identifiers = st.text(
    alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=12
).filter(lambda s: s.isidentifier() and not keyword.iskeyword(s))
dotted_names = st.lists(identifiers, min_size=1, max_size=3).map(".".join)
# Text a model could emit: any printable character except lone surrogates.
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
arguments = st.dictionaries(identifiers, json_values, max_size=5)
calls = st.lists(
    st.builds(lambda n, a: ToolCall(name=n, arguments=a), dotted_names, arguments),
    min_size=1,
    max_size=4,
)


def test_builtins_are_registered():
    # pythonic-stubs writes and reads calls as pythonic does; only its tool listing differs
    # (tests/test_python_stubs.py).
    assert format_names() == [*FORMATS, "pythonic-stubs"]


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=60, deadline=None)
@given(calls=calls)
def test_render_then_parse_round_trips(name, calls):
    fmt = get_format(name)
    turn = fmt.parse(fmt.render_calls(calls))
    assert [(c.name, dict(c.arguments)) for c in turn.tool_calls] == [
        (c.name, dict(c.arguments)) for c in calls
    ]
    assert turn.content is None


@pytest.mark.parametrize("name", FORMATS)
def test_parsed_calls_get_fresh_ids(name):
    fmt = get_format(name)
    text = fmt.render_calls([ToolCall(name="f", arguments={}), ToolCall(name="f", arguments={})])
    first, second = fmt.parse(text).tool_calls
    assert first.id != second.id and first.id.startswith("call_")


@pytest.mark.parametrize("name", FORMATS)
def test_plain_text_is_content(name):
    text = "The capital of France is Paris (population 2.1 million)."
    turn = get_format(name).parse(text)
    assert turn == AssistantTurn(content=text, raw=text)


@pytest.mark.parametrize("name", FORMATS)
def test_render_tools_lists_tools_and_allows_plain_text(name):
    tool = Tool(
        name="get_weather",
        description="Current weather in a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    text = get_format(name).render_tools([tool])
    assert re.search(r'"name": ?"get_weather"', text) and "Current weather in a city" in text
    assert "plain text" in text


def test_pythonic_compact_puts_instructions_first_and_tools_as_compact_json_lines():
    """The instructions are the same text for every tool set and come first, so two libraries'
    prompts share them as a prefix the engine keeps; each tool is one line of JSON that reads
    back as its OpenAI definition, without the spaces Qwen's tokenizer spends tokens on."""
    weather = Tool(
        name="get_weather",
        description="Current weather in a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    convert = Tool(name="convert", description="Convert units, e.g. km: miles")
    fmt = get_format("pythonic-compact")
    one, two = fmt.render_tools([weather]), fmt.render_tools([convert, weather])
    listing = "Each is described by a JSON Schema:\n"
    shared = one[: one.index(listing) + len(listing)]
    assert shared.startswith("To call functions") and "listed below" in shared
    assert two.startswith(shared)
    lines = two[len(shared) :].splitlines()
    assert [json.loads(line) for line in lines] == [convert.to_openai(), weather.to_openai()]
    assert all(": " not in line.replace("km: miles", "") for line in lines)
    assert ", " not in lines[1]


def test_exact_renderings():
    calls = [ToolCall(name="f", arguments={"a": 1}), ToolCall(name="g", arguments={"b": "x"})]
    assert get_format("hermes").render_calls(calls) == (
        '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>\n'
        '<tool_call>\n{"name": "g", "arguments": {"b": "x"}}\n</tool_call>'
    )
    assert get_format("json").render_calls(calls) == (
        '[{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {"b": "x"}}]'
    )
    assert get_format("llama3").render_calls(calls) == (
        '{"name": "f", "parameters": {"a": 1}}; {"name": "g", "parameters": {"b": "x"}}'
    )
    assert get_format("pythonic").render_calls(calls) == '[f(a=1), g(b="x")]'


def test_pythonic_refuses_names_it_cannot_write():
    with pytest.raises(UserError, match=r"'get-weather'.*json"):
        get_format("pythonic").render_calls([ToolCall(name="get-weather", arguments={})])
    with pytest.raises(UserError, match="'from'"):
        get_format("pythonic").render_calls([ToolCall(name="f", arguments={"from": 1})])


def test_unknown_format_names_the_accepted_ones():
    with pytest.raises(UserError, match=r"'xml'.*hermes, json, llama3, pythonic"):
        get_format("xml")


class _Upper(BaseFormat):
    """A plugin format: calls as NAME in capitals (only to exercise the registry)."""

    name = "upper"
    call_start = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

    def calls_rules(self, tools, *, parallel):
        names = " | ".join(f'"{name.upper()}"' for name, _ in tools)
        return ['calls: call (" " call)*' if parallel else "calls: call", f"call: {names}"]

    def render_calls(self, calls):
        return " ".join(c.name.upper() for c in calls)

    def render_tools(self, tools):
        return "Say a tool name in capitals."

    def parse(self, text):
        return AssistantTurn(content=text, raw=text)


def test_plugins_use_the_same_door():
    plugin = register_format(_Upper())
    try:
        assert get_format("upper") is plugin
        assert "upper" in format_names()
        with pytest.raises(UserError, match="already registered"):
            register_format(_Upper())
        register_format(_Upper(), replace=True)
    finally:
        unregister_format("upper")
    with pytest.raises(UserError, match=r"needs a ToolCallFormat.*lacks call_markers, call_start"):
        register_format(object())  # type: ignore[arg-type]
