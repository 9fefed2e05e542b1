"""MCP both ways: `fncall mcp-serve` spoken to by a real MCP client over stdio, and back."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import mcp_types
import pytest
from mcp import Client, StdioServerParameters

from conftest import SAMPLE_TOOLS_FILE
from fncall import ToolError, UserError
from fncall.tools import ToolSet, build_mcp_server, load_mcp_tools, load_tool_file, tool

SERVE_ARGS = ["-m", "fncall", "mcp-serve", str(SAMPLE_TOOLS_FILE)]


def texts(result: mcp_types.CallToolResult) -> list[str]:
    return [c.text for c in result.content if isinstance(c, mcp_types.TextContent)]


def test_real_mcp_client_lists_and_calls_over_stdio() -> None:
    async def session() -> tuple[Any, ...]:
        params = StdioServerParameters(command=sys.executable, args=SERVE_ARGS)
        async with Client(params) as client:
            listed = await client.list_tools()
            added = await client.call_tool("add", {"a": 2, "b": 40})
            weather = await client.call_tool("get_weather", {"city": "Tokyo"})
            invalid = await client.call_tool("add", {"a": "two", "b": 1})
            return listed, added, weather, invalid

    listed, added, weather, invalid = anyio.run(session)
    assert [t.name for t in listed.tools] == ["get_weather", "add", "mean"]
    expected = load_tool_file(SAMPLE_TOOLS_FILE)
    for listed_tool in listed.tools:  # the exact fncall schema crosses the wire
        assert listed_tool.input_schema == expected.get(listed_tool.name).parameters
        assert listed_tool.description == expected.get(listed_tool.name).description
    assert not added.is_error and texts(added) == ["42"]
    assert weather.structured_content == {"city": "Tokyo", "temperature": 22.0, "unit": "celsius"}
    assert invalid.is_error
    assert texts(invalid) == [
        "ArgumentError: invalid arguments for 'add': a: 'two' is not of type 'integer'"
    ]


def test_load_mcp_tools_round_trip_through_fncall() -> None:
    with load_mcp_tools(sys.executable, SERVE_ARGS, timeout=60) as remote:
        assert remote.names == ["get_weather", "add", "mean"]
        weather = remote.get("get_weather")
        assert weather.parameters == load_tool_file(SAMPLE_TOOLS_FILE).get("get_weather").parameters
        assert weather.function is not None
        assert weather.function(city="Paris", unit="fahrenheit") == {
            "city": "Paris",
            "temperature": 64.4,
            "unit": "fahrenheit",
        }
        mean = remote.get("mean")  # an async function on the server side
        assert mean.function is not None and mean.function(values=[1, 2, "6"]) == "3.0"
        with pytest.raises(ToolError, match="ValueError: no weather data for 'Atlantis'"):
            weather.function(city="Atlantis")
        # a view over the remote set still calls the server
        prefixed = remote.prefixed("remote").get("remote_add")
        assert prefixed.function is not None and prefixed.function(a=1, b=2) == "3"
        with pytest.raises(UserError, match="unknown tool 'sub'"):
            remote.call("sub", {})
    with pytest.raises(UserError, match="is closed"):
        remote.call("add", {"a": 1, "b": 2})
    remote.close()  # closing twice is harmless


def test_load_mcp_tools_reports_a_server_that_fails_to_start() -> None:
    with pytest.raises(UserError, match=r"could not start MCP server .*-c"):
        load_mcp_tools(sys.executable, ["-c", "raise SystemExit(1)"], timeout=20)


def test_in_process_server_reports_unknown_tools_and_schema_only_tools() -> None:
    @tool
    def echo(text: str) -> str:
        """Echo.

        Args:
            text: Text.
        """
        return text

    from fncall import Tool

    server = build_mcp_server(ToolSet([echo, Tool(name="schema_only")]))

    async def session() -> tuple[Any, ...]:
        async with Client(server) as client:
            return (
                await client.call_tool("echo", {"text": "hi"}),
                await client.call_tool("ech", {}),
                await client.call_tool("schema_only", {}),
            )

    ok, unknown, schema_only = anyio.run(session)
    assert texts(ok) == ["hi"] and not ok.is_error
    assert unknown.is_error
    assert texts(unknown) == [
        "UserError: unknown tool 'ech' (did you mean 'echo'?); available: 'echo', 'schema_only'"
    ]
    assert texts(schema_only) == [
        "ToolError: tool 'schema_only' has a schema but no function to run"
    ]


def test_cli_module_arguments() -> None:
    import argparse

    from fncall.cli import mcp_serve

    parser = argparse.ArgumentParser()
    mcp_serve.add_arguments(parser)
    args = parser.parse_args([str(SAMPLE_TOOLS_FILE), "--only", "add", "--prefix", "m"])
    assert (args.tool_file, args.only, args.prefix, args.name) == (
        str(SAMPLE_TOOLS_FILE),
        ["add"],
        "m",
        "fncall",
    )
