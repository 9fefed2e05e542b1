"""The agent loop: model turn -> tool calls -> execution -> tool messages -> next turn.

``Agent(model, tools).run("question")`` repeats until the model answers without calling a tool
(``stop_reason="final_answer"``) or ``max_steps`` model turns have been used
(``stop_reason="max_steps"``). Running out of steps is a normal outcome with a stop reason, not an
exception. Tool failures never stop the loop: the error text goes back to the model in the tool
message so it can correct itself. A turn the model's output parser rejects
(``ModelOutputError``) is also fed back, as a user message quoting the error, and counts as a step.

Every step is observable: each event is passed to ``on_event`` as it happens and kept in
``AgentRun.events``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fncall.engine.base import ChatModel
from fncall.errors import ModelOutputError, UserError
from fncall.execute.executor import Executor, SandboxSpec, ToolsLike
from fncall.execute.policy import Policy
from fncall.types import AssistantTurn, Message, ToolCall, ToolChoice, ToolResult, as_messages

StopReason = Literal["final_answer", "max_steps"]


@dataclass(frozen=True, kw_only=True)
class ModelTurn:
    """The model produced a turn. ``error`` is set when its output could not be parsed."""

    step: int
    turn: AssistantTurn
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class ToolCallsStarted:
    """The calls of a turn are about to run."""

    step: int
    calls: tuple[ToolCall, ...]


@dataclass(frozen=True, kw_only=True)
class ToolResultsReady:
    """The calls of a turn have run; results in call order."""

    step: int
    results: tuple[ToolResult, ...]


@dataclass(frozen=True, kw_only=True)
class Finished:
    """The run is over."""

    steps: int
    stop_reason: StopReason
    final: str | None


AgentEvent = ModelTurn | ToolCallsStarted | ToolResultsReady | Finished


@dataclass(frozen=True, kw_only=True)
class AgentRun:
    """The outcome of a run: the whole conversation, the answer, and how it ended."""

    messages: tuple[Message, ...]
    final: str | None  # the final answer's text; None when the run stopped without one
    steps: int  # model turns used
    stop_reason: StopReason
    events: tuple[AgentEvent, ...]

    @property
    def tool_results(self) -> list[ToolResult]:
        """Every tool result of the run, in order."""
        return [r for e in self.events if isinstance(e, ToolResultsReady) for r in e.results]


class Agent:
    """Drives a ``ChatModel`` and executes its tool calls until it answers.

    ``tools`` is what ``Executor`` accepts (the tools must be listable, to show them to the
    model). ``timeout``, ``policy`` and ``sandbox`` are passed to the ``Executor``.
    ``model_options`` (e.g. ``temperature``) go to every ``model.complete`` call.
    """

    def __init__(
        self,
        model: ChatModel,
        tools: ToolsLike,
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
        if not callable(getattr(model, "complete", None)):
            raise UserError(f"model must be a ChatModel with .complete(), got {model!r}")
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise UserError(f"max_steps must be a positive integer, got {max_steps!r}")
        if on_event is not None and not callable(on_event):
            raise UserError(f"on_event must be a callable taking an event, got {on_event!r}")
        self.model = model
        self.executor = Executor(tools, timeout=timeout, policy=policy, sandbox=sandbox)
        self.tools = self.executor.tools.tools()
        self.max_steps = max_steps
        self.tool_choice = ToolChoice.parse(tool_choice, [t.name for t in self.tools])
        self.parallel_tool_calls = parallel_tool_calls
        self.on_event = on_event
        self.model_options = dict(model_options or {})

    def run(self, messages: str | Sequence[Message | Mapping[str, Any]]) -> AgentRun:
        """Run the loop to the end. Tools of one turn still run concurrently."""
        return self._loop(messages, self._complete, self.executor.run)

    async def arun(self, messages: str | Sequence[Message | Mapping[str, Any]]) -> AgentRun:
        """Async ``run``: the model call runs in a thread (or ``model.acomplete`` if it has one)
        so the event loop stays free while the model generates."""
        conversation = as_messages(messages)
        events: list[AgentEvent] = []
        for step in range(1, self.max_steps + 1):
            acomplete = getattr(self.model, "acomplete", None)
            try:
                if callable(acomplete):
                    turn = await acomplete(list(conversation), self.tools, **self._model_kwargs())
                else:
                    turn = await asyncio.to_thread(self._complete, conversation)
            except ModelOutputError as exc:
                self._reject(step, exc, conversation, events)
                continue
            calls = self._accept(step, turn, conversation, events)
            if not calls:
                return self._finish(step, "final_answer", turn.content, conversation, events)
            results = await self.executor.arun(calls)
            self._record_results(step, results, conversation, events)
        return self._finish(self.max_steps, "max_steps", None, conversation, events)

    def _loop(
        self,
        messages: str | Sequence[Message | Mapping[str, Any]],
        complete: Callable[[list[Message]], AssistantTurn],
        execute: Callable[[Sequence[ToolCall]], list[ToolResult]],
    ) -> AgentRun:
        conversation = as_messages(messages)
        events: list[AgentEvent] = []
        for step in range(1, self.max_steps + 1):
            try:
                turn = complete(conversation)
            except ModelOutputError as exc:
                self._reject(step, exc, conversation, events)
                continue
            calls = self._accept(step, turn, conversation, events)
            if not calls:
                return self._finish(step, "final_answer", turn.content, conversation, events)
            self._record_results(step, execute(calls), conversation, events)
        return self._finish(self.max_steps, "max_steps", None, conversation, events)

    def _model_kwargs(self) -> dict[str, Any]:
        return {
            "tool_choice": self.tool_choice,
            "parallel_tool_calls": self.parallel_tool_calls,
            **self.model_options,
        }

    def _complete(self, conversation: list[Message]) -> AssistantTurn:
        turn = self.model.complete(list(conversation), self.tools, **self._model_kwargs())
        if not isinstance(turn, AssistantTurn):
            raise UserError(f"model.complete must return an AssistantTurn, got {turn!r}")
        return turn

    def _emit(self, event: AgentEvent, events: list[AgentEvent]) -> None:
        events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _accept(
        self, step: int, turn: AssistantTurn, conversation: list[Message], events: list[AgentEvent]
    ) -> tuple[ToolCall, ...]:
        self._emit(ModelTurn(step=step, turn=turn), events)
        conversation.append(turn.to_message())
        if turn.tool_calls:
            self._emit(ToolCallsStarted(step=step, calls=turn.tool_calls), events)
        return turn.tool_calls

    def _reject(
        self,
        step: int,
        exc: ModelOutputError,
        conversation: list[Message],
        events: list[AgentEvent],
    ) -> None:
        turn = AssistantTurn(content=exc.raw, raw=exc.raw, finish_reason="error")
        self._emit(ModelTurn(step=step, turn=turn, error=str(exc)), events)
        conversation.append(Message(role="assistant", content=exc.raw))
        conversation.append(
            Message(
                role="user",
                content=f"Your last reply could not be used: {exc}. Reply again, correctly.",
            )
        )

    def _record_results(
        self,
        step: int,
        results: Sequence[ToolResult],
        conversation: list[Message],
        events: list[AgentEvent],
    ) -> None:
        self._emit(ToolResultsReady(step=step, results=tuple(results)), events)
        conversation.extend(result.to_message() for result in results)

    def _finish(
        self,
        steps: int,
        stop_reason: StopReason,
        final: str | None,
        conversation: list[Message],
        events: list[AgentEvent],
    ) -> AgentRun:
        self._emit(Finished(steps=steps, stop_reason=stop_reason, final=final), events)
        return AgentRun(
            messages=tuple(conversation),
            final=final,
            steps=steps,
            stop_reason=stop_reason,
            events=tuple(events),
        )
