"""The tool-call grammar admits exactly the valid outputs, per syntax and tool_choice."""

from __future__ import annotations

from typing import Any

import pytest

from fncall.constrain import accepts
from fncall.constrain import build_constraint as build_with
from fncall.errors import UserError
from fncall.formats import get_format
from fncall.types import Tool, ToolChoice

SYNTAXES = ("json", "hermes", "pythonic", "llama3")


def build_constraint(tools: list[Tool], *, syntax: str = "json", **options: Any) -> Any:
    """``fncall.constrain.build_constraint`` with the syntax given by its format's name."""
    return build_with(tools, syntax=get_format(syntax), **options)


WEATHER = Tool(
    name="get_weather",
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
SEARCH = Tool(
    name="search",
    parameters={
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "limit": {"type": "number"},
            "exact": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "filter": {
                "type": "object",
                "properties": {"lang": {"type": ["string", "null"]}},
                "additionalProperties": False,
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    },
)
TOOLS = [WEATHER, SEARCH]


def render(syntax: str, calls: list[tuple[str, str]]) -> str:
    """Calls as ``(name, arguments text)`` in each syntax (arguments already in that syntax)."""
    if syntax == "json":
        return "[" + ", ".join(f'{{"name": "{n}", "arguments": {a}}}' for n, a in calls) + "]"
    if syntax == "hermes":
        return "\n".join(
            f'<tool_call>\n{{"name": "{n}", "arguments": {a}}}\n</tool_call>' for n, a in calls
        )
    if syntax == "llama3":
        return "; ".join(f'{{"name": "{n}", "parameters": {a}}}' for n, a in calls)
    return "[" + ", ".join(f"{n}({a})" for n, a in calls) + "]"


# (json arguments, pythonic arguments) for the same call.
VALID = {
    "get_weather": [
        ('{"city": "Paris"}', 'city="Paris"'),
        ('{"city": "Paris", "unit": "celsius", "days": 3}', 'city="Paris", unit="celsius", days=3'),
        ('{"city": "caf\u00e9 \\"x\\""}', 'city="caf\u00e9 \\"x\\""'),
    ],
    "search": [
        (
            '{"query": "q", "limit": 2.5, "exact": true, "tags": ["a", "b"], '
            '"filter": {"lang": null}}',
            'query="q", limit=2.5, exact=True, tags=["a", "b"], filter={"lang": None}',
        ),
        ('{"query": "q", "filter": {}}', 'query="q", filter={}'),
    ],
}
INVALID = {
    "wrong tool name": ("get_wether", '{"city": "Paris"}', 'city="Paris"'),
    "wrong type": ("get_weather", '{"city": 3}', "city=3"),
    "integer as float": ("get_weather", '{"city": "P", "days": 2.5}', 'city="P", days=2.5'),
    "missing required": ("get_weather", '{"unit": "celsius"}', 'unit="celsius"'),
    "extra property": ("search", '{"query": "q", "page": 1}', 'query="q", page=1'),
    "extra nested property": (
        "search",
        '{"query": "q", "filter": {"lang": "en", "x": 1}}',
        'query="q", filter={"lang": "en", "x": 1}',
    ),
    "enum violation": ("get_weather", '{"city": "P", "unit": "kelvin"}', 'city="P", unit="kelvin"'),
    "json literal in python": ("search", '{"query": "q", "exact": True}', 'query="q", exact=true'),
    "undeclared on implicit closed": ("get_weather", '{"city": "P", "x": 1}', 'city="P", x=1'),
}


def pick(syntax: str, pair: tuple[str, str]) -> str:
    return pair[1] if syntax == "pythonic" else pair[0]


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_valid_calls_are_admitted(syntax: str) -> None:
    constraint = build_constraint(TOOLS, tool_choice="required", syntax=syntax)
    assert constraint is not None
    for name, cases in VALID.items():
        for case in cases:
            text = render(syntax, [(name, pick(syntax, case))])
            assert accepts(constraint, text), text


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("problem", sorted(INVALID))
def test_invalid_calls_are_rejected(syntax: str, problem: str) -> None:
    constraint = build_constraint(TOOLS, tool_choice="auto", syntax=syntax)
    assert constraint is not None
    name, json_args, python_args = INVALID[problem]
    text = render(syntax, [(name, pick(syntax, (json_args, python_args)))])
    assert not accepts(constraint, text), text


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_auto_admits_plain_text_and_calls(syntax: str) -> None:
    constraint = build_constraint(TOOLS, tool_choice="auto", syntax=syntax)
    assert constraint is not None
    assert accepts(constraint, "Hello world, no tool fits this question.")
    assert accepts(constraint, "Paris is\nlovely [in spring] {really}.")
    assert accepts(
        constraint, render(syntax, [("get_weather", pick(syntax, VALID["get_weather"][0]))])
    )
    assert not accepts(constraint, "")  # an empty answer is never useful
    assert not accepts(constraint, "  Hello")  # text may not start with whitespace


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_auto_text_cannot_start_like_a_call(syntax: str) -> None:
    """Once the output starts like a call, the call grammar holds: no escaping into text."""
    constraint = build_constraint(TOOLS, syntax=syntax)
    assert constraint is not None
    broken = render(syntax, [("get_weather", pick(syntax, ('{"city": 3}', "city=3")))])
    assert not accepts(constraint, broken)
    assert not accepts(constraint, broken + " and some text")


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_required_rejects_plain_text(syntax: str) -> None:
    constraint = build_constraint(TOOLS, tool_choice="required", syntax=syntax)
    assert constraint is not None
    assert not accepts(constraint, "Hello world")


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_named_choice_admits_only_that_tool(syntax: str) -> None:
    choice = {"type": "function", "function": {"name": "search"}}
    constraint = build_constraint(TOOLS, tool_choice=choice, syntax=syntax)
    assert constraint is not None
    assert constraint.tool_names == ("search",)
    assert accepts(constraint, render(syntax, [("search", pick(syntax, VALID["search"][1]))]))
    assert not accepts(
        constraint, render(syntax, [("get_weather", pick(syntax, VALID["get_weather"][0]))])
    )
    assert not accepts(constraint, "Hello world")


def test_allowed_subset_in_auto_mode() -> None:
    choice = ToolChoice(mode="auto", allowed=("get_weather",))
    constraint = build_constraint(TOOLS, tool_choice=choice)
    assert constraint is not None
    assert accepts(constraint, "Hello world")
    assert accepts(constraint, render("json", [("get_weather", '{"city": "P"}')]))
    assert not accepts(constraint, render("json", [("search", '{"query": "q"}')]))


def test_none_means_no_constraint() -> None:
    assert build_constraint(TOOLS, tool_choice="none") is None
    assert build_constraint([], tool_choice="auto") is None


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_parallel_calls_on_and_off(syntax: str) -> None:
    two = render(
        syntax,
        [
            ("get_weather", pick(syntax, VALID["get_weather"][0])),
            ("search", pick(syntax, VALID["search"][1])),
        ],
    )
    one = render(syntax, [("get_weather", pick(syntax, VALID["get_weather"][1]))])
    parallel = build_constraint(TOOLS, tool_choice="required", syntax=syntax)
    single = build_constraint(
        TOOLS, tool_choice="required", parallel_tool_calls=False, syntax=syntax
    )
    assert parallel is not None and single is not None
    assert accepts(parallel, two) and accepts(parallel, one)
    assert accepts(single, one)
    assert not accepts(single, two)


def test_json_syntax_admits_a_markdown_fence() -> None:
    constraint = build_constraint(TOOLS, tool_choice="auto")
    assert constraint is not None
    call = render("json", [("get_weather", '{"city": "P"}')])
    assert accepts(constraint, f"```json\n{call}\n```")
    assert not accepts(constraint, f"```json\n{call}")
    assert not accepts(constraint, '```json\n[{"name": "nope", "arguments": {}}]\n```')


def test_properties_follow_schema_order() -> None:
    constraint = build_constraint([WEATHER], tool_choice="required")
    assert constraint is not None
    assert accepts(constraint, render("json", [("get_weather", '{"city": "P", "days": 1}')]))
    assert not accepts(constraint, render("json", [("get_weather", '{"days": 1, "city": "P"}')]))


def test_whitespace_is_free_but_bounded() -> None:
    constraint = build_constraint([WEATHER], tool_choice="required")
    assert constraint is not None
    compact = '[{"name":"get_weather","arguments":{"city":"P"}}]'
    pretty = (
        '[\n  {\n    "name": "get_weather",\n    "arguments": {\n      "city": "P"\n    }\n  }\n]'
    )
    assert accepts(constraint, compact)
    assert accepts(constraint, pretty)
    # a gap longer than the bound is refused, so a model cannot loop on whitespace
    assert not accepts(constraint, '[{"name": "get_weather",' + " " * 41 + '"arguments": {}}]')
    long_gap = '[{"name": "get_weather", "arguments": {"city":' + " " * 41 + '"P"}}]'
    assert not accepts(constraint, long_gap)
    # nothing may follow the closed call
    assert not accepts(constraint, '[{"name": "get_weather", "arguments": {"city": "P"}}]\n')


def test_compiled_grammars_are_cached_and_inspectable() -> None:
    first = build_constraint(TOOLS, syntax="hermes")
    again = build_constraint(
        [Tool(name=t.name, parameters=dict(t.parameters)) for t in TOOLS], syntax="hermes"
    )
    assert first is not None and first is again
    assert first is not build_constraint(TOOLS, syntax="hermes", parallel_tool_calls=False)
    assert "<tool_call>" in first.grammar and '\\"get_weather\\"' in first.grammar


def test_errors_name_the_problem() -> None:
    with pytest.raises(UserError, match=r"syntax object.*got 'xml'"):
        build_with(TOOLS, syntax="xml")  # type: ignore[arg-type]  # a name is not a syntax
    with pytest.raises(UserError, match="unknown tool-call format 'xml'"):
        build_constraint(TOOLS, syntax="xml")
    with pytest.raises(UserError, match="unknown tool"):
        build_constraint(TOOLS, tool_choice={"type": "function", "function": {"name": "nope"}})
    with pytest.raises(UserError, match="no tools"):
        build_constraint([], tool_choice="required")
    with pytest.raises(UserError, match="unique"):
        build_constraint([WEATHER, WEATHER])


def test_json_syntax_admits_a_bare_call_object_and_constrains_it() -> None:
    constraint = build_constraint(TOOLS, tool_choice="auto")
    assert constraint is not None
    assert accepts(constraint, '{"name": "get_weather", "arguments": {"city": "P"}}')
    assert accepts(constraint, '```json\n{"name": "get_weather", "arguments": {"city": "P"}}\n```')
    # text starting with "{" is a call: an invalid one cannot slip through as free text
    assert not accepts(constraint, '{"name": "nope", "arguments": {}}')
    assert not accepts(constraint, '{"name": "get_weather", "arguments": {"city": 3}}')


def test_auto_text_may_open_a_non_json_code_fence() -> None:
    """Only a ```json fence starts a call; other code blocks are a plain answer."""
    constraint = build_constraint(TOOLS, tool_choice="auto")
    assert constraint is not None
    assert accepts(constraint, "```python\nprint('no function fits')\n```")
    assert accepts(constraint, "`x` is not something I can look up.")
    assert not accepts(constraint, '```json\n[{"name": "nope", "arguments": {}}]\n```')
    required = build_constraint(TOOLS, tool_choice="required")
    assert required is not None
    assert not accepts(required, "```python\nprint(1)\n```")
