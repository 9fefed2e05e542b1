"""OpenAI tools JSON <-> ToolSet, and BFCL function docs -> tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fncall import UserError
from fncall.tools import (
    bfcl_schema,
    tool_from_bfcl,
    toolset_from_bfcl,
    toolset_from_openai,
    toolset_to_openai,
    validate_arguments,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "strict": True,
    },
}
BARE = {"name": "ping", "description": "Ping.", "parameters": {"type": "object", "properties": {}}}


def test_openai_round_trip_with_wrapped_and_bare_entries() -> None:
    toolset = toolset_from_openai([WEATHER, BARE])
    assert toolset.names == ["get_weather", "ping"]
    weather = toolset.get("get_weather")
    assert weather.function is None and weather.strict
    assert toolset_to_openai(toolset) == [WEATHER, {"type": "function", "function": BARE}]
    assert toolset_from_openai(json.dumps({"tools": [WEATHER]})).names == ["get_weather"]


def test_openai_from_file_and_missing_parameters(tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    path.write_text(json.dumps([{"type": "function", "function": {"name": "noop"}}]))
    (noop,) = toolset_from_openai(path)
    assert noop.parameters == {"type": "object", "properties": {}}
    with pytest.raises(UserError, match="no such file"):
        toolset_from_openai(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ([WEATHER, 42], "tools[1]: expected {'type': 'function', 'function': {'name'"),
        (
            [{"type": "retrieval"}],
            "tools[0]: only tools of type 'function' are supported, got 'retrieval'",
        ),
        (
            [{"type": "function", "function": {"description": "x"}}],
            "tools[0]: the function needs a non-empty string 'name'",
        ),
        (
            [{"name": "f", "parameters": "none"}],
            "tools[0] ('f'): 'parameters' must be a JSON Schema object, got 'none'",
        ),
        ("[not json", "OpenAI tools: the string is not valid JSON"),
        (3.5, "OpenAI tools: expected a list of tools, got float"),
    ],
)
def test_openai_malformed_entries_are_named(bad: object, expected: str) -> None:
    with pytest.raises(UserError) as info:
        toolset_from_openai(bad)
    assert str(info.value).startswith(expected)


BFCL_DOC = {
    "name": "geometry.area_circle",
    "description": "Area of a circle.",
    "parameters": {
        "type": "dict",
        "properties": {
            "radius": {"type": "float", "description": "The radius."},
            "units": {"type": "string", "enum": ["m", "cm"], "default": "m"},
            "center": {"type": "tuple", "items": {"type": "integer"}},
            "style": {
                "type": "dict",
                "properties": {"color": {"type": "string"}, "extra": {"type": "any"}},
                "required": ["color"],
            },
            "layers": {
                "type": "array",
                "items": {"type": "dict", "properties": {"z": {"type": "boolean"}}},
            },
        },
        "required": ["radius"],
    },
}


def test_bfcl_types_are_mapped_at_every_level() -> None:
    area = tool_from_bfcl(BFCL_DOC)
    assert area.name == "geometry.area_circle"
    assert area.function is None
    assert area.parameters == {
        "type": "object",
        "properties": {
            "radius": {"type": "number", "description": "The radius."},
            "units": {"type": "string", "enum": ["m", "cm"], "default": "m"},
            "center": {"type": "array", "items": {"type": "integer"}},
            "style": {
                "type": "object",
                "properties": {"color": {"type": "string"}, "extra": {}},
                "required": ["color"],
            },
            "layers": {
                "type": "array",
                "items": {"type": "object", "properties": {"z": {"type": "boolean"}}},
            },
        },
        "required": ["radius"],
    }
    checked = validate_arguments(area, {"radius": "2.5", "center": [1, 2]})
    assert checked == {"radius": 2.5, "center": [1, 2]}


def test_bfcl_java_names_and_unknown_types() -> None:
    assert bfcl_schema({"type": "HashMap"}) == {"type": "object"}
    assert bfcl_schema({"type": "long"}) == {"type": "integer"}
    with pytest.raises(UserError) as info:
        tool_from_bfcl(
            {"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "complex"}}}}
        )
    assert "function ('f').parameters.x: unknown BFCL type 'complex'; accepted: any, array," in str(
        info.value
    )


def test_bfcl_cases_file_yields_the_union_of_functions(tmp_path: Path) -> None:
    other = {
        "name": "ping",
        "description": "Ping.",
        "parameters": {"type": "dict", "properties": {}},
    }
    lines = [
        {"id": "simple_0", "question": [], "function": [BFCL_DOC]},
        {"id": "simple_1", "question": [], "function": [BFCL_DOC, other]},
    ]
    path = tmp_path / "BFCL_v4_simple.json"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    assert toolset_from_bfcl(path).names == ["geometry.area_circle", "ping"]
    clash = {**other, "description": "Different."}
    with pytest.raises(UserError, match="functions\\[1\\]: 'ping' is defined twice, differently"):
        toolset_from_bfcl([other, clash])


def test_bfcl_malformed_docs_are_named() -> None:
    with pytest.raises(
        UserError, match="functions\\[0\\]: a BFCL function doc needs a non-empty string 'name'"
    ):
        toolset_from_bfcl([{"description": "nameless"}])
    with pytest.raises(UserError, match="parameters must be of type 'dict', got 'string'"):
        tool_from_bfcl({"name": "f", "parameters": {"type": "string"}})
    with pytest.raises(UserError, match="required: must be a list of names"):
        tool_from_bfcl({"name": "f", "parameters": {"type": "dict", "required": "x"}})
