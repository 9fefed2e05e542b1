"""Function libraries: tools from Python functions, tool sets, validation, importers, MCP.

Importing this package does not import the MCP client/server stack; ``load_mcp_tools``,
``MCPToolSet`` and ``serve_mcp`` load it on first use. Tool retrieval (``RetrievingToolSet``,
``offered_tools``: numpy, and the embedding model on first use) loads the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fncall.tools.importers import (
    bfcl_schema,
    tool_from_bfcl,
    tool_from_openai,
    toolset_from_bfcl,
    toolset_from_openai,
    toolset_to_openai,
)
from fncall.tools.loader import load_tool_file, toolset_from_module
from fncall.tools.registry import AbstractToolSet, ToolSet, ToolsInput, as_toolset
from fncall.tools.schema import python_arguments, tool, tool_from_function
from fncall.tools.validation import validate_arguments
from fncall.tools.wrappers import FilteredToolSet, PrefixedToolSet, RenamedToolSet

if TYPE_CHECKING:
    from fncall.tools.mcp import MCPToolSet, build_mcp_server, load_mcp_tools, serve_mcp
    from fncall.tools.retrieval import RetrievingToolSet, offered_tools

_MCP_NAMES = ("MCPToolSet", "build_mcp_server", "load_mcp_tools", "serve_mcp")
_RETRIEVAL_NAMES = ("RetrievingToolSet", "offered_tools")

__all__ = [
    "AbstractToolSet",
    "FilteredToolSet",
    "MCPToolSet",
    "PrefixedToolSet",
    "RenamedToolSet",
    "RetrievingToolSet",
    "ToolSet",
    "ToolsInput",
    "as_toolset",
    "bfcl_schema",
    "build_mcp_server",
    "load_mcp_tools",
    "load_tool_file",
    "offered_tools",
    "python_arguments",
    "serve_mcp",
    "tool",
    "tool_from_bfcl",
    "tool_from_function",
    "tool_from_openai",
    "toolset_from_bfcl",
    "toolset_from_module",
    "toolset_from_openai",
    "toolset_to_openai",
    "validate_arguments",
]


def __getattr__(name: str) -> Any:
    if name in _MCP_NAMES:
        from fncall.tools import mcp

        return getattr(mcp, name)
    if name in _RETRIEVAL_NAMES:
        from fncall.tools import retrieval

        return getattr(retrieval, name)
    raise AttributeError(f"module 'fncall.tools' has no attribute {name!r}")
