"""``fncall mcp-serve my_tools.py``: expose a Python function library as an MCP server over stdio.

Point an MCP client (Claude Desktop, an IDE, ``fncall.tools.load_mcp_tools``) at
``fncall mcp-serve path/to/my_tools.py``. Stdout carries the protocol; messages go to stderr.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "tool_file",
        help="Python file defining the tools (@tool functions, "
        "a `tools` list, or public documented functions)",
    )
    parser.add_argument("--name", default="fncall", help="server name announced to clients")
    parser.add_argument(
        "--only",
        action="append",
        metavar="TOOL",
        default=None,
        help="expose only this tool (repeatable)",
    )
    parser.add_argument("--prefix", default=None, help="prefix every tool name with PREFIX_")
    parser.add_argument(
        "--lenient-docs",
        action="store_true",
        help="warn about undocumented parameters instead of refusing them",
    )


def run(args: argparse.Namespace) -> int:
    from fncall.tools import AbstractToolSet, load_tool_file, serve_mcp

    toolset: AbstractToolSet = load_tool_file(
        args.tool_file, strict_docs="warn" if args.lenient_docs else True
    )
    if args.only:
        toolset = toolset.filtered(args.only)
    if args.prefix:
        toolset = toolset.prefixed(args.prefix)
    print(
        f"fncall mcp-serve: serving {len(toolset)} tool(s) from {args.tool_file}: "
        f"{', '.join(toolset.names)}",
        file=sys.stderr,
    )
    serve_mcp(toolset, name=args.name)
    return 0
