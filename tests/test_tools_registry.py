"""ToolSet registry and its wrapper views (filter, prefix, rename)."""

from __future__ import annotations

import pytest

from fncall import Tool, UserError
from fncall.tools import FilteredToolSet, PrefixedToolSet, RenamedToolSet, ToolSet, tool


@tool
def get_weather(city: str) -> str:
    """Current weather.

    Args:
        city: The city.
    """
    return f"sunny in {city}"


@tool
def get_time(city: str) -> str:
    """Current time.

    Args:
        city: The city.
    """
    return f"noon in {city}"


def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: First.
        b: Second.
    """
    return a + b


def make() -> ToolSet:
    toolset = ToolSet([get_weather, get_time], namespace="world")
    toolset.add(add, namespace="math")
    return toolset


def test_order_len_names_and_openai_export() -> None:
    toolset = make()
    assert toolset.names == ["get_weather", "get_time", "add"]
    assert len(toolset) == 3
    assert [t.name for t in toolset] == toolset.names
    assert "add" in toolset and "sub" not in toolset
    exported = toolset.to_openai()
    assert exported[2] == {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two numbers.",
            "parameters": {
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "description": "First."},
                    "b": {"type": "integer", "description": "Second."},
                },
                "required": ["a", "b"],
                "additionalProperties": False,
            },
        },
    }


def test_get_unknown_names_close_matches() -> None:
    with pytest.raises(UserError) as info:
        make().get("get_wether")
    assert str(info.value) == (
        "unknown tool 'get_wether' (did you mean 'get_weather' or 'get_time'?); "
        "available: 'get_weather', 'get_time', 'add'"
    )
    with pytest.raises(UserError, match="unknown tool 'zzz'; available: 'get_weather'"):
        make().get("zzz")


def test_duplicates_are_refused_unless_replaced() -> None:
    toolset = make()
    with pytest.raises(UserError, match=r"'add' is already registered.*prefixed"):
        toolset.add(add)
    replacement = Tool(name="add", description="other")
    toolset.add(replacement, replace=True)
    assert toolset.get("add") is replacement
    assert toolset.names == ["get_weather", "get_time", "add"]


def test_decorator_form_and_remove() -> None:
    toolset = ToolSet()

    @toolset.add(namespace="util")
    def echo(text: str) -> str:
        """Echo.

        Args:
            text: Text.
        """
        return text

    assert isinstance(echo, Tool)
    assert toolset.namespace_of("echo") == "util"
    assert toolset.remove("echo") is echo
    assert len(toolset) == 0 and not toolset


def test_namespaces_are_live_views() -> None:
    toolset = make()
    assert toolset.namespaces == ["world", "math"]
    world = toolset.namespace("world")
    assert world.names == ["get_weather", "get_time"]
    toolset.add(Tool(name="get_date"), namespace="world")
    assert world.names == ["get_weather", "get_time", "get_date"]
    with pytest.raises(
        UserError, match="unknown namespace 'space'; namespaces: \\['world', 'math'\\]"
    ):
        toolset.namespace("space")


def test_filtered_by_names_or_predicate() -> None:
    toolset = make()
    only = toolset.filtered(["add"])
    assert isinstance(only, FilteredToolSet)
    assert only.names == ["add"]
    assert toolset.filtered(lambda t: t.name.startswith("get_")).names == [
        "get_weather",
        "get_time",
    ]
    with pytest.raises(UserError, match=r"cannot keep unknown tool\(s\) \['nope'\]"):
        toolset.filtered(["nope"])
    with pytest.raises(UserError, match="unknown tool 'get_time'"):
        only.get("get_time")


def test_prefixed_tools_call_the_original_function() -> None:
    toolset = make()
    prefixed = toolset.prefixed("geo")
    assert isinstance(prefixed, PrefixedToolSet)
    assert prefixed.names == ["geo_get_weather", "geo_get_time", "geo_add"]
    weather = prefixed.get("geo_get_weather")
    assert weather.function is get_weather.function
    assert weather.function is not None and weather.function("Oslo") == "sunny in Oslo"
    assert weather.parameters == get_weather.parameters
    assert prefixed.to_openai()[0]["function"]["name"] == "geo_get_weather"
    assert prefixed.original_name("geo_add") == "add"


def test_renamed_and_stacked_views() -> None:
    toolset = make()
    renamed = toolset.renamed({"add": "sum_numbers"})
    assert isinstance(renamed, RenamedToolSet)
    assert renamed.names == ["get_weather", "get_time", "sum_numbers"]
    summed = renamed.get("sum_numbers")
    assert summed.function is not None and summed.function(a=2, b=3) == 5
    stacked = renamed.filtered(["sum_numbers"]).prefixed("calc")
    assert stacked.names == ["calc_sum_numbers"]
    assert stacked.original_name("calc_sum_numbers") == "add"
    assert toolset.names == ["get_weather", "get_time", "add"]  # the inner set is untouched
    with pytest.raises(UserError, match="renaming gives two tools the name 'get_time'"):
        toolset.renamed({"get_weather": "get_time"})
    with pytest.raises(UserError, match=r"cannot rename unknown tool\(s\) \['mul'\]"):
        toolset.renamed({"mul": "times"})


def test_wrappers_are_not_subclasses_of_toolset() -> None:
    view = make().prefixed("x")
    assert not isinstance(view, ToolSet)
    with pytest.raises(UserError, match="wraps a ToolSet"):
        PrefixedToolSet([get_weather], "x")  # type: ignore[arg-type]
    copy = ToolSet(view)  # a view can seed a new, independent registry
    assert copy.names == ["x_get_weather", "x_get_time", "x_add"]
