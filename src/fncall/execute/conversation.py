"""The one tool conversation loop: model turn -> calls -> results -> next turn, until an answer.

``fncall.chat()``, ``Agent.run`` / ``Agent.arun``, the server's execution of its own tools and
``fncall chat`` all run this loop, so they follow the same rules. The loop does no I/O itself:
``ToolConversation.steps()`` is a generator that yields what it needs done (``AskModel``,
``RunCalls``) and what happened (the ``AgentEvent``s), and is sent the answers. A blocking
driver (``run_conversation``), an async one (``arun_conversation``) and the server's streaming
driver fulfil the same requests in their own way.

The rules, in the order they apply to a step:

1. **tool_choice.** The caller's choice governs the first turn. After tool results have come
   back, ``required`` becomes ``auto`` over the same allowed tools (a named function is
   ``required`` with one allowed tool, so it becomes ``auto`` over that tool): the model may now
   answer, and a tool the request excluded stays excluded. ``auto`` and ``none`` stay as given.
2. **The last step answers.** The turn at step ``max_steps`` is asked with ``tool_choice="none"``
   (unless it is also the first turn, which rule 1 governs). If the model calls anyway (an
   unconstrained or remote model may ignore tool_choice), nothing runs and the run stops with
   ``stop_reason="max_steps"``.
3. **Unusable output.** A turn the model's output parser rejects (``ModelOutputError``) is fed
   back as a user message quoting the error, and counts as a step.
4. **Repeated calls.** Under ``tool_choice="auto"``, a turn whose calls all repeat work already
   done since the last user message is not run again: the model is asked once more, in the
   same step, with ``tool_choice="none"``, to answer from the results it has. (A ``required``
   or named choice is the caller's demand for a call, as pydantic-ai's output tool after a
   result is: the call stands.) A call repeats when it has the
   same name and arguments as a call answered since then, or when its function has already
   returned a result that is not an error since then and the call carries no value from the
   user's message that those calls did not use (``repeats``). Small models otherwise call the
   same tool again after reading its result, often with other or invented arguments, until the
   step limit; a call the request still needs (the second city of two) carries a new value.
   A call to *another* function counts the same way when the request never names what that
   function does: it carries no value from the user's message that the answered calls did not
   use, and no content word of the request occurs in the function's name or description
   (``unasked``: after the weather result, converting its 23 Celsius with
   ``convert_currency``). A chain the request asks for still runs: "find alice's orders" names
   ``get_orders`` even when its only value came from the first result.
5. **parallel_tool_calls=False** keeps the first call of a turn.
6. **Excluded calls never run.** A call to a tool the step does not offer (outside the allowed
   set, or any call under ``none``) gets an error result saying so, and the model reads it.
7. **Calls handed back.** A driver may decline to run a turn's calls (``chat(execute=False)``;
   the server for calls to tools the client defined): the run stops with
   ``stop_reason="tool_calls"`` and that turn's calls are the caller's to run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from fncall.errors import ModelOutputError, PermissionDenied, UserError, describe_exception
from fncall.judge import repeats
from fncall.types import AssistantTurn, Message, Tool, ToolCall, ToolChoice, ToolResult

StopReason = Literal["final_answer", "max_steps", "tool_calls"]
T = TypeVar("T")


# -- what the loop asks for ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AskModel:
    """Produce the next assistant turn. Answer with an ``AssistantTurn``, or with the
    ``ModelOutputError`` the model's output raised."""

    step: int
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...]
    tool_choice: ToolChoice
    parallel_tool_calls: bool

    def send(self, method: Callable[..., T], **options: Any) -> T:
        """Hand the request to a ``ChatModel`` method (``model.complete`` or ``model.stream``)."""
        return method(
            list(self.messages),
            self.tools,
            tool_choice=self.tool_choice,
            parallel_tool_calls=self.parallel_tool_calls,
            **options,
        )


@dataclass(frozen=True, kw_only=True)
class RunCalls:
    """Run these calls. Answer with one ``ToolResult`` per call, in order, or ``None`` to hand
    the turn's calls back to the caller instead (rule 7)."""

    step: int
    calls: tuple[ToolCall, ...]


Request = AskModel | RunCalls


# -- what happened -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ModelTurn:
    """The model produced a turn. ``error`` is set when its output could not be parsed."""

    step: int
    turn: AssistantTurn
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class CallsRepeated:
    """The model only repeated calls already answered; it is asked again to answer (rule 4)."""

    step: int
    calls: tuple[ToolCall, ...]


@dataclass(frozen=True, kw_only=True)
class ToolCallsStarted:
    """The calls of a turn are about to run (or to be handed back to the caller)."""

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


AgentEvent = ModelTurn | CallsRepeated | ToolCallsStarted | ToolResultsReady | Finished


@dataclass(frozen=True, kw_only=True)
class AgentRun:
    """The outcome of a run: the whole conversation, the answer, and how it ended."""

    messages: tuple[Message, ...]
    final: str | None  # the final answer's text; None when the run stopped without one
    steps: int  # model turns used
    stop_reason: StopReason
    events: tuple[AgentEvent, ...]

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Every call that ran (or was handed back), in order."""
        return [c for e in self.events if isinstance(e, ToolCallsStarted) for c in e.calls]

    @property
    def tool_results(self) -> list[ToolResult]:
        """Every tool result of the run, in order."""
        return [r for e in self.events if isinstance(e, ToolResultsReady) for r in e.results]

    @property
    def pending_calls(self) -> tuple[ToolCall, ...]:
        """The calls handed back to the caller (``stop_reason="tool_calls"``), else empty."""
        if self.stop_reason != "tool_calls":
            return ()
        return self.messages[-1].tool_calls

    @property
    def last_turn(self) -> AssistantTurn | None:
        """The last turn the model produced (token usage and finish reason included)."""
        turns = [e.turn for e in self.events if isinstance(e, ModelTurn) and e.error is None]
        return turns[-1] if turns else None


# -- the rules ---------------------------------------------------------------------------------


def choice_after_results(choice: ToolChoice) -> ToolChoice:
    """Rule 1: once results are back, a forcing choice lets the model answer; the allowed set
    is kept, so what the request excluded stays excluded."""
    if choice.mode == "required":
        return ToolChoice(mode="auto", allowed=choice.allowed)
    return choice


def limit_calls(turn: AssistantTurn, parallel_tool_calls: bool) -> AssistantTurn:
    """Rule 5: with ``parallel_tool_calls=False`` a turn keeps its first call only."""
    if parallel_tool_calls or len(turn.tool_calls) <= 1:
        return turn
    return replace(turn, tool_calls=turn.tool_calls[:1])


def excluded_result(call: ToolCall, choice: ToolChoice, offered: Sequence[Tool]) -> ToolResult:
    """Rule 6: the error result of a call the step did not allow."""
    if choice.mode == "none":
        reason = "no tool may be called at this point (tool_choice is 'none')"
    else:
        names = ", ".join(t.name for t in choice.selected(offered)) or "none"
        reason = f"this request allows only: {names}"
    error = PermissionDenied(f"call to {call.name!r} was not run: {reason}")
    return ToolResult(call_id=call.id, name=call.name, error=describe_exception(error))


def rejected_turn_messages(error: ModelOutputError) -> list[Message]:
    """Rule 3: what the conversation records for an unusable turn."""
    return [
        Message(role="assistant", content=error.raw),
        Message(
            role="user",
            content=f"Your last reply could not be used: {error}. Reply again, correctly.",
        ),
    ]


# -- the loop ----------------------------------------------------------------------------------


Step = Generator[Request | AgentEvent, Any, AgentRun]


class ToolConversation:
    """One run of the loop over ``messages`` with ``tools`` (see the module docstring)."""

    def __init__(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        *,
        max_steps: int,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool = True,
    ) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise UserError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.messages = list(messages)
        self.tools = tuple(tools)
        self.max_steps = max_steps
        self.tool_choice = tool_choice or ToolChoice()
        self.parallel_tool_calls = parallel_tool_calls
        self.events: list[AgentEvent] = []

    def steps(self) -> Step:
        """Yields requests and events; returns the ``AgentRun``. Send each ``AskModel`` its
        turn (or ``ModelOutputError``), each ``RunCalls`` its results (or ``None``), and each
        event ``None``. When an event is yielded, ``self.messages`` already holds what it
        added to the conversation."""
        choice = self.tool_choice
        for step in range(1, self.max_steps + 1):
            last = step == self.max_steps and step > 1
            step_choice = ToolChoice(mode="none") if last else choice
            turn = yield from self._model_turn(step, step_choice)
            if (
                turn is not None
                and turn.tool_calls
                and step_choice.mode == "auto"
                and all(repeats(call, self.messages, self.tools) for call in turn.tool_calls)
            ):
                yield from self._event(CallsRepeated(step=step, calls=turn.tool_calls))
                step_choice = ToolChoice(mode="none")
                turn = yield from self._model_turn(step, step_choice)
            if turn is None:
                continue  # rule 3: the error was fed back; the step is spent
            self.messages.append(turn.to_message())
            yield from self._event(ModelTurn(step=step, turn=turn))
            if not turn.tool_calls:
                return (yield from self._finish(step, "final_answer", turn.content))
            if last:
                return (yield from self._finish(step, "max_steps", None))
            # Announced before they run (or are handed back): a slow tool is not silent.
            yield from self._event(ToolCallsStarted(step=step, calls=turn.tool_calls))
            results = yield from self._results(step, turn, step_choice)
            if results is None:
                return (yield from self._finish(step, "tool_calls", turn.content))
            self.messages.extend(result.to_message() for result in results)
            yield from self._event(ToolResultsReady(step=step, results=results))
            choice = choice_after_results(choice)
        return (yield from self._finish(self.max_steps, "max_steps", None))

    def _model_turn(
        self, step: int, choice: ToolChoice
    ) -> Generator[Request | AgentEvent, Any, AssistantTurn | None]:
        """Ask for a turn; ``None`` when its output was unusable (then fed back: rule 3)."""
        answer = yield self._ask(step, choice)
        if isinstance(answer, ModelOutputError):
            turn = AssistantTurn(content=answer.raw, raw=answer.raw, finish_reason="error")
            self.messages.extend(rejected_turn_messages(answer))
            yield from self._event(ModelTurn(step=step, turn=turn, error=str(answer)))
            return None
        if not isinstance(answer, AssistantTurn):
            raise UserError(f"the model must return an AssistantTurn, got {answer!r}")
        return limit_calls(answer, self.parallel_tool_calls)

    def _results(
        self, step: int, turn: AssistantTurn, choice: ToolChoice
    ) -> Generator[Request, Any, tuple[ToolResult, ...] | None]:
        """One result per call in call order; excluded calls never reach the driver (rule 6).
        ``None`` when the driver hands the calls back (rule 7)."""
        allowed = {tool.name for tool in choice.selected(self.tools)}
        calls = turn.tool_calls
        runnable = [i for i, call in enumerate(calls) if call.name in allowed]
        results: list[ToolResult | None] = [
            None if i in runnable else excluded_result(call, choice, self.tools)
            for i, call in enumerate(calls)
        ]
        if runnable:
            ran = yield RunCalls(step=step, calls=tuple(calls[i] for i in runnable))
            if ran is None:
                return None
            ran = list(ran)
            if len(ran) != len(runnable):
                raise UserError(f"{len(runnable)} calls ran but {len(ran)} results came back")
            for i, result in zip(runnable, ran, strict=True):
                results[i] = result
        return tuple(r for r in results if r is not None)

    def _ask(self, step: int, choice: ToolChoice) -> AskModel:
        return AskModel(
            step=step,
            messages=tuple(self.messages),
            tools=self.tools,
            tool_choice=choice,
            parallel_tool_calls=self.parallel_tool_calls,
        )

    def _event(self, event: AgentEvent) -> Generator[AgentEvent, Any, None]:
        self.events.append(event)
        yield event

    def _finish(
        self, steps: int, stop_reason: StopReason, final: str | None
    ) -> Generator[AgentEvent, Any, AgentRun]:
        yield from self._event(Finished(steps=steps, stop_reason=stop_reason, final=final))
        return AgentRun(
            messages=tuple(self.messages),
            final=final,
            steps=steps,
            stop_reason=stop_reason,
            events=tuple(self.events),
        )


# -- drivers -----------------------------------------------------------------------------------

Complete = Callable[[AskModel], AssistantTurn]
RunTools = Callable[[Sequence[ToolCall]], "Sequence[ToolResult] | None"]
OnEvent = Callable[[AgentEvent], None] | None


def run_conversation(
    conversation: ToolConversation, complete: Complete, run_tools: RunTools, on_event: OnEvent
) -> AgentRun:
    """Drive the loop with blocking calls: ``complete(request)`` for a model turn (it may raise
    ``ModelOutputError``), ``run_tools(calls)`` for results (or ``None`` to hand them back)."""
    steps = conversation.steps()
    answer: Any = None
    try:
        while True:
            item = steps.send(answer)
            answer = None
            if isinstance(item, AskModel):
                try:
                    answer = complete(item)
                except ModelOutputError as exc:
                    answer = exc
            elif isinstance(item, RunCalls):
                answer = run_tools(item.calls)
            elif on_event is not None:
                on_event(item)
    except StopIteration as stop:
        run: AgentRun = stop.value
        return run


async def arun_conversation(
    conversation: ToolConversation,
    complete: Callable[[AskModel], Awaitable[AssistantTurn]],
    run_tools: Callable[[Sequence[ToolCall]], Awaitable[Sequence[ToolResult] | None]],
    on_event: OnEvent,
) -> AgentRun:
    """``run_conversation`` with awaitables: the event loop stays free while the model writes."""
    run: AgentRun | None = None
    async for item in aiter_conversation(conversation, complete, run_tools):
        if isinstance(item, AgentRun):
            run = item
        elif on_event is not None:
            on_event(item)
    assert run is not None
    return run


async def aiter_conversation(
    conversation: ToolConversation,
    complete: Callable[[AskModel], Awaitable[AssistantTurn]],
    run_tools: Callable[[Sequence[ToolCall]], Awaitable[Sequence[ToolResult] | None]],
) -> AsyncIterator[AgentEvent | AgentRun]:
    """The events as they happen, then the ``AgentRun``."""
    steps = conversation.steps()
    answer: Any = None
    try:
        while True:
            item = steps.send(answer)
            answer = None
            if isinstance(item, AskModel):
                try:
                    answer = await complete(item)
                except ModelOutputError as exc:
                    answer = exc
            elif isinstance(item, RunCalls):
                answer = await run_tools(item.calls)
            else:
                yield item
    except StopIteration as stop:
        yield stop.value


def in_thread(complete: Complete) -> Callable[[AskModel], Awaitable[AssistantTurn]]:
    """An async ``complete`` that runs a blocking one in a worker thread."""

    async def acomplete(request: AskModel) -> AssistantTurn:
        return await asyncio.to_thread(complete, request)

    return acomplete
