"""The server's own tools (``fncall serve --tools my_tools.py``) and their optional execution.

A tools file is a Python module. Its tools are, in order of preference: a module attribute
``TOOLS`` (a list of ``Tool`` objects or functions), else every module-level ``Tool`` (what
``@fncall.tool`` produces), else every public function defined in the module itself (not
imported into it), each turned into a ``Tool`` from its type hints and docstring.

Loading a tools file runs its code: it is the operator's own code, trusted like any module the
operator imports. Model-requested *calls* to those tools are what ``fncall.execute`` guards
(argument validation, timeouts, policy, optional sandbox).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fncall.errors import UserError
from fncall.types import Tool, ToolCall, ToolResult


def load_tools_file(path: str | Path) -> list[Tool]:
    """Import a Python file and return the tools it defines (see the module docstring)."""
    file = Path(path)
    if not file.is_file() or file.suffix != ".py":
        raise UserError(f"--tools must name an existing Python file (*.py); got {str(path)!r}")
    module_name = f"fncall_user_tools_{abs(hash(file.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot import tools file {str(file)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise UserError(
            f"importing tools file {str(file)!r} failed: {type(exc).__name__}: {exc}"
        ) from exc

    entries: list[Any]
    if hasattr(module, "TOOLS"):
        entries = list(module.TOOLS)
    else:
        members = [v for k, v in vars(module).items() if not k.startswith("_")]
        entries = [v for v in members if isinstance(v, Tool)]
        if not entries:
            entries = [v for v in members if inspect.isfunction(v) and v.__module__ == module_name]
    tools = [entry if isinstance(entry, Tool) else Tool.from_function(entry) for entry in entries]
    if not tools:
        raise UserError(
            f"tools file {str(file)!r} defines no tools: add functions with type hints and "
            "docstrings, @fncall.tool functions, or a TOOLS list"
        )
    names = [t.name for t in tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(f"tools file {str(file)!r} defines duplicate tool names: {duplicates}")
    return tools


class ServerTools:
    """The tools registered with the server and, when ``execute`` is on, their executor.

    A model turn is executed on the server only when *every* call in it names a registered
    tool with code; a turn that mixes in a client-defined tool goes back to the client whole,
    because the client cannot resume a half-executed turn.
    """

    def __init__(
        self,
        tools: Sequence[Tool] = (),
        *,
        execute: bool = False,
        timeout: float | None = 30.0,
        max_rounds: int = 5,
        executor_options: dict[str, Any] | None = None,
    ) -> None:
        self.tools = list(tools)
        self.execute = execute
        self.max_rounds = max_rounds
        self._by_name = {t.name: t for t in self.tools}
        self._executor: Any = None
        if execute:
            if not self.tools:
                raise UserError("--execute-tools needs --tools: there is nothing to execute")
            missing = [t.name for t in self.tools if t.function is None]
            if missing:
                raise UserError(f"--execute-tools: tools {missing} have no Python function to run")
            from fncall.execute import Executor

            self._executor = Executor(self.tools, timeout=timeout, **(executor_options or {}))

    def executable(self, calls: Sequence[ToolCall], offered: Sequence[Tool]) -> bool:
        """Whether the server should run these calls itself.

        The tool the model saw must be the registered one (same name and schema), so a client
        that redefines a name never gets the server's function run under its schema.
        """
        if not self.execute or not calls:
            return False
        offered_by_name = {t.name: t for t in offered}
        for call in calls:
            registered = self._by_name.get(call.name)
            seen = offered_by_name.get(call.name)
            if registered is None or seen is None:
                return False
            if dict(seen.parameters) != dict(registered.parameters):
                return False
        return True

    async def run(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        if self._executor is None:
            raise RuntimeError("ServerTools.run() without execute=True")
        results: list[ToolResult] = await self._executor.arun(calls)
        return results
