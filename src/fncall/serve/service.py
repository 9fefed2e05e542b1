"""The chat completion service: one model behind a fair gate, optional tool execution, tracing.

``ChatService.answer`` runs a non-streaming request to its ``Outcome`` (``complete`` writes it
as a chat completion; the Responses route writes it as a response); ``ChatService.open_stream``
answers with Server-Sent Events framed by a ``StreamWriter`` (chat completion chunks or
Responses events). A request with a response schema is answered through ``SchemaAnswers``
(``fncall.serve.structured``). Both go through ``ModelGate`` (FIFO, bounded, one request in
the model at a time unless it batches), run the model in a worker thread, and drive the one
conversation loop (``fncall.execute.conversation``) for at most ``ServerTools.max_rounds``
executed rounds: the server runs a turn's calls when they are all its own tools
(``--execute-tools``), and hands them back to the client otherwise. The loop's rules
(``tool_choice`` after results, the last step answers, unusable output fed back, repeated calls
answered) are the same as ``Agent``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from fncall.engine.base import ChatDelta, ChatModel
from fncall.engine.deltas import assemble_turn
from fncall.errors import ModelOutputError
from fncall.execute.conversation import (
    AgentRun,
    AskModel,
    ModelTurn,
    RunCalls,
    ToolConversation,
    ToolResultsReady,
    aiter_conversation,
)
from fncall.serve.errors import APIError, exception_to_api_error
from fncall.serve.execution import ServerTools
from fncall.serve.gate import ModelGate, QueueFullError
from fncall.serve.schemas import ChatCall
from fncall.serve.structured import SchemaAnswers
from fncall.serve.trace import TraceLog
from fncall.serve.wire import (
    ChunkWriter,
    StreamWriter,
    completion_body,
    completion_id,
    completion_message,
    usage_body,
)
from fncall.types import AssistantTurn, Message, ToolCall, ToolResult

log = logging.getLogger("fncall.serve")

_END = object()


class DeltaPump:
    """Runs ``model.stream()`` in a thread that holds a gate slot; hands deltas to the loop.

    ``stop()`` makes the thread close the model's iterator after the delta in progress, which
    ends generation; the slot is released when the thread exits, not before.
    """

    def __init__(self, gate: ModelGate, make_stream: Callable[[], Iterator[ChatDelta]]) -> None:
        self._gate = gate
        self._make_stream = make_stream
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._stop = threading.Event()

    def start(self) -> None:
        self._gate.start_thread(self._work, name="fncall-model-stream")

    def stop(self) -> None:
        self._stop.set()

    def _put(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _work(self) -> None:
        try:
            iterator = self._make_stream()
            try:
                for delta in iterator:
                    if self._stop.is_set():
                        break
                    self._put(delta)
            finally:
                close = getattr(iterator, "close", None)
                if callable(close):
                    close()
            self._put(_END)
        except BaseException as exc:
            self._put(exc)

    async def next(self, request: Request, poll_s: float = 0.25) -> ChatDelta | None:
        """The next delta; ``None`` at the end. Raises the model's exception, or
        ``ConnectionError`` when the client has gone away (generation is then stopped)."""
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), poll_s)
            except TimeoutError:
                if await request.is_disconnected():
                    self.stop()
                    raise ConnectionError("client disconnected") from None
                continue
            if item is _END:
                return None
            if isinstance(item, BaseException):
                raise item
            return item  # type: ignore[no-any-return]


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What a request came to: the turn the client receives, the messages the server added
    before it (executed calls and their results), and the prompt, completion and cached prompt
    tokens of every turn it took."""

    turn: AssistantTurn
    executed: list[Message]
    usage: tuple[int, int, int]


@dataclass
class ChatService:
    model: ChatModel
    model_name: str
    gate: ModelGate
    server_tools: ServerTools
    trace: TraceLog | None = None

    # -- non-streaming ---------------------------------------------------------------------

    async def acquire(self, request: Request, poll_s: float = 0.25) -> None:
        """Wait for the model in FIFO order; leave the line if the client goes away meanwhile.
        Raises ``APIError`` (503) when the line is full, ``ConnectionError`` on disconnect."""
        waiting = asyncio.ensure_future(self.gate.acquire())
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=poll_s)
            if done:
                try:
                    waiting.result()
                except QueueFullError as exc:
                    raise APIError(503, str(exc), type="server_error", code="queue_full") from None
                return
            if await request.is_disconnected():
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
                raise ConnectionError("client disconnected while queued")

    def _conversation(self, call: ChatCall) -> ToolConversation:
        return ToolConversation(
            call.messages,
            call.tools,
            max_steps=self.server_tools.max_rounds + 1,
            tool_choice=call.tool_choice,
            parallel_tool_calls=call.parallel_tool_calls,
        )

    async def _run_tools(
        self, call: ChatCall, calls: Sequence[ToolCall]
    ) -> list[ToolResult] | None:
        """The server's own tools run here; any other call goes back to the client."""
        if not self.server_tools.executable(calls, call.tools):
            return None
        return await self.server_tools.run(calls)

    async def complete(self, call: ChatCall, request: Request) -> dict[str, Any]:
        """A ``chat.completion`` body."""
        outcome = await self.answer(call, request)
        return completion_body(
            id=completion_id(),
            created=int(time.time()),
            model=self.model_name,
            turn=outcome.turn,
            usage=usage_body(*outcome.usage),
            executed=outcome.executed,
            logprobs=call.logprobs,
        )

    async def answer(self, call: ChatCall, request: Request) -> Outcome:
        """Run the conversation loop to the turn the client receives (traced)."""
        started = time.perf_counter()
        executed: list[Message] = []

        async def complete_turn(ask: AskModel) -> AssistantTurn:
            return await self._run_model(ask, call, request)

        async def run_tools(calls: Sequence[ToolCall]) -> list[ToolResult] | None:
            return await self._run_tools(call, calls)

        try:
            run: AgentRun | None = None
            async for item in aiter_conversation(
                self._conversation(call), complete_turn, run_tools
            ):
                if isinstance(item, AgentRun):
                    run = item
            assert run is not None
            turn, executed = _outcome(run, len(call.messages))
        except BaseException as exc:
            self._trace(call, None, executed, started, exc)
            raise
        self._trace(call, completion_message(turn), executed, started)
        return Outcome(turn=turn, executed=executed, usage=_usage(run))

    def _answering(self, call: ChatCall) -> ChatModel | SchemaAnswers:
        """The model, answering under the request's response schema if it has one."""
        if call.response_schema is None:
            return self.model
        return SchemaAnswers(self.model, call.response_schema)

    async def _run_model(self, ask: AskModel, call: ChatCall, request: Request) -> AssistantTurn:
        def work() -> AssistantTurn:
            return ask.send(self._answering(call).complete, **call.options)

        await self.acquire(request)
        future = self.gate.submit(work)  # the slot is released when the model call returns
        return await asyncio.shield(asyncio.wrap_future(future))

    # -- streaming -------------------------------------------------------------------------

    def _pump(self, ask: AskModel, call: ChatCall) -> DeltaPump:
        def make_stream() -> Iterator[ChatDelta]:
            return ask.send(self._answering(call).stream, **call.options)

        return DeltaPump(self.gate, make_stream)

    async def open_stream(
        self, call: ChatCall, request: Request, writer: StreamWriter | None = None
    ) -> AsyncIterator[str]:
        """Start generating; errors before the first delta raise here (a proper HTTP error),
        later ones become an error event. ``writer`` frames the events (by default as
        ``chat.completion.chunk``s)."""
        if writer is None:
            writer = ChunkWriter(
                model=self.model_name, include_usage=call.include_usage, logprobs=call.logprobs
            )
        started = time.perf_counter()
        conversation = self._conversation(call)
        steps = conversation.steps()
        ask = next(steps)
        assert isinstance(ask, AskModel)
        await self.acquire(request)
        pump = self._pump(ask, call)
        pump.start()
        try:
            first = await _next_delta(pump, request)
        except BaseException as exc:
            pump.stop()
            self._trace(call, None, [], started, exc, stream=True)
            raise
        return self._events(call, request, conversation, steps, pump, first, started, writer)

    async def _events(
        self,
        call: ChatCall,
        request: Request,
        conversation: ToolConversation,
        steps: Generator[Any, Any, AgentRun],
        pump: DeltaPump | None,
        pending: ChatDelta | ModelOutputError | None,
        started: float,
        writer: StreamWriter,
    ) -> AsyncIterator[str]:
        """Drive the loop, streaming each model turn's text as it comes. A turn's calls are
        held until the loop has decided on them: run here (the client sees an executed-messages
        event), or handed back (the client sees the calls, ``parallel_tool_calls`` applied)."""
        executed: list[Message] = []
        error: BaseException | None = None
        run: AgentRun | None = None
        turn: AssistantTurn | None = None
        try:
            for event in writer.start():
                yield event
            answer: Any = None
            while True:
                if pump is not None:
                    deltas: list[ChatDelta] = []
                    while isinstance(pending, ChatDelta):
                        deltas.append(pending)
                        for event in writer.text(pending):
                            yield event
                        pending = await _next_delta(pump, request)
                    pump = None
                    if isinstance(pending, ModelOutputError):
                        answer, pending = pending, None
                    else:
                        try:
                            answer = assemble_turn(deltas)
                        except ModelOutputError as exc:
                            answer = exc
                try:
                    item = steps.send(answer)
                except StopIteration as stop:
                    run = stop.value
                    break
                answer = None
                if isinstance(item, AskModel):
                    writer.new_turn()
                    await self.acquire(request)
                    pump = self._pump(item, call)
                    pump.start()
                    pending = await _next_delta(pump, request)
                elif isinstance(item, RunCalls):
                    answer = await self._run_tools(call, item.calls)
                elif isinstance(item, ToolResultsReady) or (
                    isinstance(item, ModelTurn) and item.error is not None
                ):
                    # What the server added to the conversation, before the model goes on.
                    added = conversation.messages[len(call.messages) + len(executed) :]
                    executed.extend(added)
                    for event in writer.executed(added):
                        yield event
            assert run is not None
            turn, executed = _outcome(run, len(call.messages))
            for event in writer.finish(turn, _usage(run)):
                yield event
        except ConnectionError as exc:
            error = exc
            log.info("client disconnected mid-stream; generation stopped")
        except (asyncio.CancelledError, GeneratorExit) as exc:
            error = exc
            if pump is not None:
                pump.stop()
            raise
        except BaseException as exc:
            error = exc
            if pump is not None:
                pump.stop()
            for event in writer.error(exception_to_api_error(exc)):
                yield event
        finally:
            if pump is not None:
                pump.stop()
            message = None
            if error is None and turn is not None:
                message = completion_message(turn)
            self._trace(call, message, executed, started, error, stream=True)

    # -- tracing ---------------------------------------------------------------------------

    def _trace(
        self,
        call: ChatCall,
        message: dict[str, Any] | None,
        executed: list[Message],
        started: float,
        error: BaseException | None = None,
        *,
        stream: bool = False,
    ) -> None:
        if self.trace is None:
            return
        status = 200
        text = None
        if isinstance(error, ConnectionError | asyncio.CancelledError | GeneratorExit):
            status, text = 499, "client disconnected"
        elif error is not None:
            api_error = exception_to_api_error(error, quiet=True)
            status, text = api_error.status, api_error.message
        request = {
            "messages": [m.to_openai() for m in call.messages],
            "tools": [t.to_openai() for t in call.tools],
            "tool_choice": None
            if call.tool_choice is None
            else {"mode": call.tool_choice.mode, "allowed": call.tool_choice.allowed},
            "parallel_tool_calls": call.parallel_tool_calls,
            "options": call.options,
        }
        if call.response_schema is not None:
            request["response_format"] = call.response_schema.response_format()
        try:
            self.trace.record(
                model=self.model_name,
                request=request,
                response=message,
                executed=[m.to_openai() for m in executed],
                status=status,
                latency_s=time.perf_counter() - started,
                stream=stream,
                error=text,
            )
        except Exception:  # a broken trace database must not break serving
            log.exception("could not write the trace log")


async def _next_delta(pump: DeltaPump, request: Request) -> ChatDelta | ModelOutputError | None:
    """The pump's next delta; the ``ModelOutputError`` a stream raised is returned instead: it
    is the turn's answer, fed back to the model like unusable output found on assembly."""
    try:
        return await pump.next(request)
    except ModelOutputError as exc:
        return exc


def _outcome(run: AgentRun, given: int) -> tuple[AssistantTurn, list[Message]]:
    """The turn the client receives and the messages the server added before it. A run whose
    last turn was unusable output is the model's error (rule 3 has no step left to retry)."""
    last = next(e for e in reversed(run.events) if isinstance(e, ModelTurn))
    if last.error is not None:
        raise ModelOutputError(last.error, raw=last.turn.raw)
    return last.turn, list(run.messages[given:-1])


def _usage(run: AgentRun) -> tuple[int, int, int]:
    """Prompt, completion and cached prompt tokens, summed over every turn the request took."""
    turns = [e.turn for e in run.events if isinstance(e, ModelTurn)]
    return (
        sum(t.prompt_tokens for t in turns),
        sum(t.completion_tokens for t in turns),
        sum(t.cached_tokens for t in turns),
    )
