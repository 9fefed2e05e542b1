"""The agent: a ``ChatModel`` and an ``Executor`` driven through the one conversation loop.

``Agent(model, tools).run("question")`` repeats model turn -> calls -> results until the model
answers without calling a tool (``stop_reason="final_answer"``) or ``max_steps`` model turns have
been used (``stop_reason="max_steps"``). The rules for ``tool_choice`` across steps, the last
step, unusable output and repeated calls are the conversation loop's
(``fncall.execute.conversation``), shared with ``fncall.chat()``, the server and ``fncall chat``.
Tool failures never stop the loop: the error text goes back to the model in the tool message so
it can correct itself.

Every step is observable: each event is passed to ``on_event`` as it happens and kept in
``AgentRun.events``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fncall.engine.base import ChatModel, require_chat_model
from fncall.errors import UserError
from fncall.execute.conversation import (
    AgentEvent,
    AgentRun,
    AskModel,
    ToolConversation,
    arun_conversation,
    in_thread,
    run_conversation,
)
from fncall.execute.executor import Executor, SandboxSpec
from fncall.execute.policy import Policy
from fncall.tools import ToolsInput
from fncall.tools.retrieval import offered_tools
from fncall.types import AssistantTurn, Message, ToolChoice, as_messages


class Agent:
    """Drives a ``ChatModel`` and executes its tool calls until it answers.

    ``tools``: what ``fncall.tools.as_toolset`` accepts; a ``RetrievingToolSet`` offers each
    ``run`` only the tools retrieved for its messages (every tool still executes). ``timeout``,
    ``policy`` and ``sandbox`` are passed to the ``Executor``. ``model_options`` (e.g.
    ``temperature``) go to every ``model.complete`` call.
    """

    def __init__(
        self,
        model: ChatModel,
        tools: ToolsInput,
        *,
        max_steps: int = 8,
        policy: Policy | None = None,
        timeout: float | None = 30.0,
        sandbox: SandboxSpec = None,
        tool_choice: ToolChoice | str | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool = True,
        on_event: Callable[[AgentEvent], None] | None = None,
        model_options: Mapping[str, Any] | None = None,
    ) -> None:
        require_chat_model(model)
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise UserError(f"max_steps must be a positive integer, got {max_steps!r}")
        if on_event is not None and not callable(on_event):
            raise UserError(f"on_event must be a callable taking an event, got {on_event!r}")
        self.model = model
        self.executor = Executor(tools, timeout=timeout, policy=policy, sandbox=sandbox)
        self.tools = self.executor.tools.tools
        self.max_steps = max_steps
        self.tool_choice = ToolChoice.parse(tool_choice, [t.name for t in self.tools])
        self.parallel_tool_calls = parallel_tool_calls
        self.on_event = on_event
        self.model_options = dict(model_options or {})

    def run(self, messages: str | Sequence[Message | Mapping[str, Any]]) -> AgentRun:
        """Run the loop to the end. Tools of one turn still run concurrently."""
        return run_conversation(
            self._conversation(messages), self._complete, self.executor.run, self.on_event
        )

    async def arun(self, messages: str | Sequence[Message | Mapping[str, Any]]) -> AgentRun:
        """Async ``run``: the model call runs in a worker thread, so the event loop stays free
        while the model generates; tools run on the loop."""
        return await arun_conversation(
            self._conversation(messages),
            in_thread(self._complete),
            self.executor.arun,
            self.on_event,
        )

    def _conversation(
        self, messages: str | Sequence[Message | Mapping[str, Any]]
    ) -> ToolConversation:
        history = as_messages(messages)
        return ToolConversation(
            history,
            offered_tools(self.executor.tools, history, self.tool_choice),
            max_steps=self.max_steps,
            tool_choice=self.tool_choice,
            parallel_tool_calls=self.parallel_tool_calls,
        )

    def _complete(self, request: AskModel) -> AssistantTurn:
        return request.send(self.model.complete, **self.model_options)
