"""The server's own tools (``fncall serve --tools my_tools.py``) and their optional execution.

The tools file is loaded by ``fncall.tools.load_tool_file``, like every other command's. Loading
it runs its code: it is the operator's own code, trusted like any module the
operator imports. Model-requested *calls* to those tools are what ``fncall.execute`` guards
(argument validation, timeouts, policy, optional sandbox).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fncall.errors import UserError
from fncall.types import Tool, ToolCall, ToolResult


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
