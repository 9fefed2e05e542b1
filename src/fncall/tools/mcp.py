"""MCP both ways: use an MCP server's tools as a tool set, and serve a tool set over MCP (stdio).

Client side: ``load_mcp_tools(command, args)`` starts the server as a subprocess and returns an
``MCPToolSet``. Its tools' ``function``s are plain synchronous callables, usable from any thread
or event loop: the MCP session lives on its own event loop in a background thread, because an
MCP session (anyio task groups) must be opened and closed by one task, while tool calls arrive
from wherever the caller is. Close it with ``close()`` (or ``with`` / ``async with``); the
subprocess ends with it.

Server side: ``serve_mcp(toolset)`` answers ``tools/list`` with each tool's exact JSON Schema and
``tools/call`` by validating the arguments (``validate_arguments``) and running the function (sync
functions in a worker thread). Failures come back as MCP tool errors whose text is
``"Cls: message"``, the way fncall reports failures to a model.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import anyio
import mcp_types
from mcp import Client, StdioServerParameters
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from fncall.errors import ToolError, UserError, describe_exception
from fncall.tools.registry import AbstractToolSet, unknown_tool_message
from fncall.tools.repair import repair_parameters
from fncall.tools.schema import python_arguments
from fncall.tools.validation import validate_arguments
from fncall.types import Tool

__all__ = ["MCPToolSet", "build_mcp_server", "load_mcp_tools", "serve_mcp", "serve_mcp_async"]


# ---------------------------------------------------------------------------- client side


class MCPToolSet(AbstractToolSet):
    """The tools of one MCP server, callable through a live session. Close it when done."""

    def __init__(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.command = command
        self.args = list(args)
        self.timeout = timeout
        self._params = StdioServerParameters(
            command=command, args=self.args, env=dict(env) if env else None, cwd=cwd
        )
        self._tools: dict[str, Tool] = {}
        self._client: Client | None = None
        self._closed = False
        self._ready: Future[None] = Future()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._run_loop, name=f"fncall-mcp-{Path(command).name}", daemon=True
        )
        self._thread.start()
        try:
            self._ready.result(timeout=timeout)
        except FutureTimeout:
            self.close()
            raise UserError(
                f"MCP server {self._label()} did not start within {timeout:g} s"
            ) from None
        except BaseException as exc:
            self.close()
            raise UserError(
                f"could not start MCP server {self._label()}: {describe_exception(exc)}"
            ) from exc

    def _label(self) -> str:
        return " ".join([self.command, *self.args])

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._session())
        finally:
            self._loop.close()

    async def _session(self) -> None:
        """The one task that owns the MCP session from connect to close."""
        self._stop = asyncio.Event()
        try:
            async with Client(self._params, read_timeout_seconds=self.timeout) as client:
                self._client = client
                self._tools = await self._list_tools(client)
                self._ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            elif not self._closed:
                raise
        finally:
            self._client = None
            if not self._ready.done():
                self._ready.set_exception(RuntimeError("the MCP session ended"))

    async def _list_tools(self, client: Client) -> dict[str, Tool]:
        tools: dict[str, Tool] = {}
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            for listed in page.tools:
                schema = listed.input_schema or {"type": "object", "properties": {}}
                tools[listed.name] = Tool(
                    name=listed.name,
                    description=listed.description or "",
                    parameters=dict(repair_parameters(schema, tool_name=listed.name)),
                    function=self._caller(listed.name),
                )
            cursor = page.next_cursor
            if not cursor:
                return tools

    def _caller(self, name: str) -> Callable[..., Any]:
        def call_mcp_tool(**arguments: Any) -> Any:
            return self.call(name, arguments)

        call_mcp_tool.__name__ = call_mcp_tool.__qualname__ = name
        call_mcp_tool.__doc__ = f"Call the MCP tool {name!r} on {self._label()}."
        return call_mcp_tool

    def tool_map(self) -> dict[str, Tool]:
        return dict(self._tools)

    def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """Call a tool on the server; returns its structured result, else its text.

        A tool that reports an error raises ``ToolError`` with the server's message.
        """
        if name not in self._tools:
            raise UserError(unknown_tool_message(name, list(self._tools)))
        client = self._client
        if client is None or self._closed:
            raise UserError(f"the MCP session with {self._label()} is closed")
        future = asyncio.run_coroutine_threadsafe(
            client.call_tool(name, dict(arguments or {})), self._loop
        )
        try:
            result = future.result(timeout=self.timeout)
        except FutureTimeout:
            future.cancel()
            raise ToolError(f"MCP tool {name!r} did not answer within {self.timeout:g} s") from None
        except Exception as exc:
            raise ToolError(f"MCP tool {name!r} failed: {describe_exception(exc)}") from exc
        return _result_value(name, result)

    def close(self) -> None:
        """End the session and the server process. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        stop = self._stop
        if stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout=self.timeout)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)

    def __enter__(self) -> MCPToolSet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> MCPToolSet:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()


def _result_value(name: str, result: mcp_types.CallToolResult) -> Any:
    texts = [c.text for c in result.content if isinstance(c, mcp_types.TextContent)]
    if result.is_error:
        raise ToolError("\n".join(texts) or f"MCP tool {name!r} failed")
    if result.structured_content is not None:
        return result.structured_content
    return "\n".join(texts)


def load_mcp_tools(
    command: str,
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 30.0,
) -> MCPToolSet:
    """Start the stdio MCP server ``command args...`` and return its tools as a tool set.

    ``env`` is merged over MCP's safe default environment. Use it as a context manager (or call
    ``close()``) so the server process ends.
    """
    return MCPToolSet(command, args, env=env, cwd=cwd, timeout=timeout)


# ---------------------------------------------------------------------------- server side


def build_mcp_server(tools: AbstractToolSet, *, name: str = "fncall") -> Server[Any]:
    """A low-level MCP server exposing ``tools`` (exact schemas, validated calls)."""

    async def list_tools(
        ctx: Any, params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListToolsResult:
        return mcp_types.ListToolsResult(
            tools=[
                mcp_types.Tool(
                    name=tool.name,
                    description=tool.description or None,
                    input_schema=dict(tool.parameters),
                )
                for tool in tools
            ]
        )

    async def call_tool(
        ctx: Any, params: mcp_types.CallToolRequestParams
    ) -> mcp_types.CallToolResult:
        try:
            value = await _run_tool(tools, params.name, params.arguments)
        except Exception as exc:
            return _error_result(describe_exception(exc))
        return _success_result(value)

    return Server(name, on_list_tools=list_tools, on_call_tool=call_tool)


async def _run_tool(tools: AbstractToolSet, name: str, arguments: Any) -> Any:
    if name not in tools:
        raise UserError(unknown_tool_message(name, tools.names))
    tool = tools.get(name)
    if tool.function is None:
        raise ToolError(f"tool {name!r} has a schema but no function to run")
    # Off the event loop, like the executor: validation is bounded but not instant.
    valid = await anyio.to_thread.run_sync(
        functools.partial(validate_arguments, tool, arguments if arguments is not None else {})
    )
    checked = python_arguments(tool, valid)
    function = tool.function
    if inspect.iscoroutinefunction(function):
        return await function(**checked)
    value = await anyio.to_thread.run_sync(functools.partial(function, **checked))
    return await value if inspect.isawaitable(value) else value


def _error_result(text: str) -> mcp_types.CallToolResult:
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(text=text)], is_error=True)


def _success_result(value: Any) -> mcp_types.CallToolResult:
    if isinstance(value, str):
        return mcp_types.CallToolResult(content=[mcp_types.TextContent(text=value)])
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = str(value)
    # MCP structured content must be an object: only dict results carry it.
    structured = (
        value if isinstance(value, dict) and all(isinstance(k, str) for k in value) else None
    )
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(text=text)],
        structured_content=json.loads(text) if structured is not None else None,
    )


async def serve_mcp_async(tools: AbstractToolSet, *, name: str = "fncall") -> None:
    """Serve ``tools`` over this process's stdin/stdout until the client disconnects."""
    server = build_mcp_server(tools, name=name)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def serve_mcp(tools: AbstractToolSet, *, name: str = "fncall") -> None:
    """Blocking: serve ``tools`` as an MCP stdio server (what ``fncall mcp-serve`` runs)."""
    anyio.run(functools.partial(serve_mcp_async, tools, name=name))
