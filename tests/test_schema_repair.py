"""Self-contradicting parameter schemas are repaired once, where imported tools are built.

The cases come from BFCL live data: an enum of strings on an array, ``["True", "False"]`` on a
boolean, ``["1", "2"]`` on an integer. Before the repair the grammar admitted calls the
validator refused; afterwards the two agree value by value.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

from fncall.constrain import accepts, build_constraint
from fncall.errors import ArgumentError
from fncall.formats import get_format
from fncall.tools import tool_from_bfcl, tool_from_openai, validate_arguments
from fncall.tools.repair import repair_parameters
from fncall.types import Tool
from fncall.warnings import FncallWarning

# name: (the contradicting property, the repaired property, values to try against both)
REPAIRS: dict[str, tuple[dict[str, Any], dict[str, Any], list[Any]]] = {
    "array enum, no items": (
        {"type": "array", "enum": ["a", "b"]},
        {"type": "array", "items": {"enum": ["a", "b"]}},
        [["a"], ["a", "b"], "a", ["c"], []],
    ),
    "array enum, items agree": (
        {"type": "array", "items": {"type": "string"}, "enum": ["a", "b"]},
        {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
        [["b"], "b", ["c"]],
    ),
    "array enum, items disagree": (
        {"type": "array", "items": {"type": "integer"}, "enum": ["low", "high"]},
        {"type": "array", "items": {"type": "string", "enum": ["low", "high"]}},
        [["low"], [1], "low"],
    ),
    "boolean, string enum converts": (
        {"type": "boolean", "enum": ["True", "False"]},
        {"type": "boolean", "enum": [True, False]},
        [True, False, "True", "true"],
    ),
    "integer, string enum converts": (
        {"type": "integer", "enum": ["1", "2"]},
        {"type": "integer", "enum": [1, 2]},
        [1, 2, 3, "1"],
    ),
    "number, string enum converts": (
        {"type": "number", "enum": ["0.5", "2"]},
        {"type": "number", "enum": [0.5, 2]},
        [0.5, 2, "0.5", 1],
    ),
    "integer, words become a string parameter": (
        {"type": "integer", "enum": ["low", "high"]},
        {"type": "string", "enum": ["low", "high"]},
        ["low", "high", 1, "medium"],
    ),
    "integer, non-canonical digits stay text": (
        {"type": "integer", "enum": ["01", "02"]},
        {"type": "string", "enum": ["01", "02"]},
        ["01", 1, "1"],
    ),
    "string, numbers become text": (
        {"type": "string", "enum": [1, 2]},
        {"type": "string", "enum": ["1", "2"]},
        ["1", 1, "3"],
    ),
    "string, booleans decide the type": (
        {"type": "string", "enum": [True, False]},
        {"type": "boolean", "enum": [True, False]},
        [True, "True", "true"],
    ),
    "nullable integer": (
        {"type": ["integer", "null"], "enum": ["1", None]},
        {"type": ["integer", "null"], "enum": [1, None]},
        [1, None, "1", 2],
    ),
}


def _openai(properties: dict[str, Any], name: str = "f") -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": properties, "required": ["p"]},
        },
    }


def _grammar_admits(tool: Tool, arguments: dict[str, Any]) -> bool:
    constraint = build_constraint([tool], tool_choice="required", syntax=get_format("json"))
    assert constraint is not None
    return accepts(constraint, json.dumps([{"name": tool.name, "arguments": arguments}]))


def _valid(tool: Tool, arguments: dict[str, Any]) -> bool:
    try:
        validate_arguments(tool, arguments, coerce=False)
    except ArgumentError:
        return False
    return True


@pytest.mark.parametrize("case", sorted(REPAIRS))
def test_repair_makes_the_grammar_and_the_validator_agree(case: str) -> None:
    broken, repaired, values = REPAIRS[case]
    with pytest.warns(FncallWarning):
        tool = tool_from_openai(_openai({"p": broken}))
    assert tool.parameters["properties"]["p"] == repaired
    admitted = []
    for value in values:
        arguments = {"p": value}
        grammar, validator = _grammar_admits(tool, arguments), _valid(tool, arguments)
        assert grammar == validator, f"{value!r}: grammar {grammar}, validator {validator}"
        admitted.append(grammar)
    assert any(admitted), "the repaired parameter admits no value at all"


def test_bfcl_docs_are_repaired_too() -> None:
    doc = {
        "name": "set_mode",
        "description": "Set modes.",
        "parameters": {
            "type": "dict",
            "properties": {
                "modes": {"type": "array", "items": {"type": "string"}, "enum": ["eco", "fast"]},
                "on": {"type": "boolean", "enum": ["True", "False"]},
            },
            "required": ["modes", "on"],
        },
    }
    with pytest.warns(FncallWarning):
        tool = tool_from_bfcl(doc)
    properties = tool.parameters["properties"]
    assert properties["modes"] == {
        "type": "array",
        "items": {"type": "string", "enum": ["eco", "fast"]},
    }
    assert properties["on"] == {"type": "boolean", "enum": [True, False]}
    arguments = {"modes": ["eco"], "on": True}
    assert _grammar_admits(tool, arguments) and _valid(tool, arguments)


def test_loading_bfcl_data_repairs_without_a_warning() -> None:
    doc = {
        "name": "f",
        "parameters": {"type": "dict", "properties": {"on": {"type": "boolean", "enum": ["True"]}}},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tool = tool_from_bfcl(doc, warn_repairs=False)
    assert tool.parameters["properties"]["on"] == {"type": "boolean", "enum": [True]}


def test_nested_properties_items_and_any_of_are_repaired() -> None:
    schema = {
        "type": "object",
        "properties": {
            "filters": {
                "type": "object",
                "properties": {"kind": {"type": "integer", "enum": ["1", "2"]}},
            },
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"flag": {"type": "boolean", "enum": ["true"]}},
                },
            },
            "choice": {"anyOf": [{"type": "array", "enum": ["x"]}, {"type": "null"}]},
        },
    }
    with pytest.warns(FncallWarning) as record:
        repaired = repair_parameters(schema, tool_name="nested")
    properties = repaired["properties"]
    assert properties["filters"]["properties"]["kind"]["enum"] == [1, 2]
    assert properties["rows"]["items"]["properties"]["flag"]["enum"] == [True]
    assert properties["choice"]["anyOf"][0] == {"type": "array", "items": {"enum": ["x"]}}
    message = str(record[0].message)
    for path in ("filters.kind", "rows[].flag", "choice.anyOf[0]"):
        assert repr(path) in message
    assert schema["properties"]["filters"]["properties"]["kind"]["enum"] == ["1", "2"]  # untouched


def test_one_warning_per_tool_names_the_tool_the_parameter_and_the_change() -> None:
    properties = {
        "p": {"type": "array", "enum": ["a", "b"]},
        "on": {"type": "boolean", "enum": ["True", "False"]},
    }
    with pytest.warns(FncallWarning) as record:
        tool_from_openai(_openai(properties, name="set_things"))
    assert len(record) == 1
    message = str(record[0].message)
    assert "'set_things'" in message
    assert "parameter 'p': moved the enum ['a', 'b']" in message
    assert "parameter 'on': enum ['True', 'False'] became [True, False]" in message


CONSISTENT: list[dict[str, Any]] = [
    {"type": "string", "enum": ["celsius", "fahrenheit"]},
    {"type": "integer", "enum": [1, 2, 3.0]},
    {"type": "number", "enum": [1, 2.5]},
    {"type": "boolean", "enum": [True]},
    {"type": ["string", "null"], "enum": ["a", None]},
    {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
    {"type": "array", "enum": [["a", "b"], ["c"]]},  # an enum of whole lists is fine
    {"enum": ["a", 1, None]},  # no type to contradict
    {"type": "object", "properties": {"x": {"type": "string"}}},
    {"anyOf": [{"type": "string"}, {"type": "integer", "enum": [1]}]},
]


@pytest.mark.parametrize("prop", CONSISTENT, ids=[json.dumps(p) for p in CONSISTENT])
def test_consistent_schemas_come_back_untouched_and_silent(prop: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"p": prop}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repair_parameters(schema, tool_name="f") is schema
        assert tool_from_openai(_openai({"p": prop})).parameters["properties"]["p"] == prop


def _deep(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "enum": ["1"]}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"p": schema}}
    return schema


HOSTILE: dict[str, dict[str, Any]] = {
    "items not a schema": {"type": "array", "items": "string", "enum": ["a"]},
    "tuple items": {"type": "array", "items": [{"type": "string"}], "enum": ["a"]},
    "enum not a list": {"type": "integer", "enum": "1,2"},
    "empty enum": {"type": "integer", "enum": []},
    "enum of objects": {"type": "string", "enum": [{"a": 1}]},
    "unknown type": {"type": "whole number", "enum": ["1"]},
    "type not a name": {"type": 7, "enum": ["1"]},
    "properties not a mapping": {"type": "object", "properties": ["a"]},
    "any_of not a list": {"anyOf": {"type": "array", "enum": ["a"]}},
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_parts_are_left_as_they_are(case: str) -> None:
    schema = {"type": "object", "properties": {"p": HOSTILE[case]}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repair_parameters(schema, tool_name="f") is schema


def test_hostile_enum_values_are_repaired_without_a_traceback() -> None:
    huge = 10**5000  # past Python's limit for int -> text
    schema = {
        "type": "object",
        "properties": {
            "big": {"type": "string", "enum": [huge]},
            "nan": {"type": "integer", "enum": [float("nan")]},
            "inf": {"type": "number", "enum": ["1e999"]},
        },
    }
    with pytest.warns(FncallWarning) as record:
        repaired = repair_parameters(schema, tool_name="f")
    properties = repaired["properties"]
    assert properties["big"]["type"] == "integer"
    assert properties["nan"]["type"] == "number"
    assert properties["inf"] == {"type": "string", "enum": ["1e999"]}
    assert len(str(record[0].message)) < 1000  # a huge value is shortened in the message


def test_nesting_is_walked_to_a_bound_and_no_further() -> None:
    shallow = _deep(3)
    with pytest.warns(FncallWarning):
        assert repair_parameters(shallow, tool_name="f") != shallow
    deep = _deep(5000)  # recursion without a bound would overflow the stack
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repair_parameters(deep, tool_name="f") is deep
