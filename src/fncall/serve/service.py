"""The chat completion service: one model behind a fair gate, optional tool execution, tracing.

``ChatService.complete`` answers a non-streaming request; ``ChatService.stream`` answers with
Server-Sent Events. Both go through ``ModelGate`` (FIFO, bounded, one request in the model at a
time unless it batches), run the model in a worker thread, and, when the server executes its
own tools, loop model -> tools -> model up to ``ServerTools.max_rounds`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request

from fncall.engine.base import ChatDelta, ChatModel
from fncall.serve.errors import APIError, exception_to_api_error
from fncall.serve.execution import ServerTools
from fncall.serve.gate import ModelGate, QueueFullError
from fncall.serve.schemas import ChatCall
from fncall.serve.trace import TraceLog
from fncall.serve.wire import (
    DONE,
    EXECUTED_FIELD,
    ChunkWriter,
    completion_body,
    completion_id,
    sse,
    usage_body,
)
from fncall.types import AssistantTurn, Message, ToolCall, ToolChoice

log = logging.getLogger("fncall.serve")

_END = object()


def _after_execution(choice: ToolChoice | None) -> ToolChoice | None:
    """Once the server has run a round of calls, a forcing tool_choice must let the model answer
    (else ``required`` would loop until max_rounds)."""
    if choice is not None and choice.mode == "required":
        return ToolChoice(mode="auto", allowed=choice.allowed)
    return choice


def _single_call(turn: AssistantTurn, parallel: bool) -> AssistantTurn:
    """Enforce ``parallel_tool_calls=false``: the client was promised at most one call."""
    if parallel or len(turn.tool_calls) <= 1:
        return turn
    log.warning(
        "model returned %d calls with parallel_tool_calls=false; keeping the first",
        len(turn.tool_calls),
    )
    return replace(turn, tool_calls=turn.tool_calls[:1])


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

    async def complete(self, call: ChatCall, request: Request) -> dict[str, Any]:
        started = time.perf_counter()
        conversation = list(call.messages)
        executed: list[Message] = []
        choice = call.tool_choice
        prompt_tokens = completion_tokens = 0
        try:
            for round_ in range(self.server_tools.max_rounds + 1):
                turn = await self._run_model(conversation, call, choice, request)
                prompt_tokens += turn.prompt_tokens
                completion_tokens += turn.completion_tokens
                if round_ < self.server_tools.max_rounds and self.server_tools.executable(
                    turn.tool_calls, call.tools
                ):
                    results = await self.server_tools.run(turn.tool_calls)
                    step = [turn.to_message(), *(r.to_message() for r in results)]
                    executed.extend(step)
                    conversation.extend(step)
                    choice = _after_execution(choice)
                    continue
                break
        except BaseException as exc:
            self._trace(call, None, executed, started, exc)
            raise
        body = completion_body(
            id=completion_id(),
            created=int(time.time()),
            model=self.model_name,
            turn=turn,
            usage=usage_body(prompt_tokens, completion_tokens),
            executed=executed,
        )
        self._trace(call, body["choices"][0]["message"], executed, started)
        return body

    async def _run_model(
        self,
        conversation: list[Message],
        call: ChatCall,
        choice: ToolChoice | None,
        request: Request,
    ) -> AssistantTurn:
        def work() -> AssistantTurn:
            return self.model.complete(
                conversation,
                call.tools,
                tool_choice=choice,
                parallel_tool_calls=call.parallel_tool_calls,
                **call.options,
            )

        await self.acquire(request)
        future = self.gate.submit(work)  # the slot is released when the model call returns
        turn = await asyncio.shield(asyncio.wrap_future(future))
        return _single_call(turn, call.parallel_tool_calls)

    # -- streaming -------------------------------------------------------------------------

    def _pump(
        self, conversation: list[Message], call: ChatCall, choice: ToolChoice | None
    ) -> DeltaPump:
        def make_stream() -> Iterator[ChatDelta]:
            return self.model.stream(
                conversation,
                call.tools,
                tool_choice=choice,
                parallel_tool_calls=call.parallel_tool_calls,
                **call.options,
            )

        return DeltaPump(self.gate, make_stream)

    async def open_stream(self, call: ChatCall, request: Request) -> AsyncIterator[str]:
        """Start generating; errors before the first delta raise here (a proper HTTP error),
        later ones become an SSE error event."""
        started = time.perf_counter()
        await self.acquire(request)
        conversation = list(call.messages)
        pump = self._pump(conversation, call, call.tool_choice)
        pump.start()
        try:
            first = await pump.next(request)
        except BaseException as exc:
            pump.stop()
            self._trace(call, None, [], started, exc, stream=True)
            raise
        return self._events(call, request, conversation, pump, first, started)

    async def _events(
        self,
        call: ChatCall,
        request: Request,
        conversation: list[Message],
        pump: DeltaPump,
        pending: ChatDelta | None,
        started: float,
    ) -> AsyncIterator[str]:
        writer = ChunkWriter(
            model=self.model_name, max_calls=None if call.parallel_tool_calls else 1
        )
        executed: list[Message] = []
        choice = call.tool_choice
        # While the server may execute this turn's calls, their fragments are held back: if it
        # runs them, the client sees an executed-messages event instead of calls to answer.
        hold_calls = self.server_tools.execute
        error: BaseException | None = None
        finish = "stop"
        try:
            yield writer.first()
            for round_ in range(self.server_tools.max_rounds + 1):
                held: list[str] = []
                finish = "stop"
                while pending is not None:
                    if pending.finish_reason:
                        finish = pending.finish_reason
                    for event in writer.content_events(pending):
                        yield event
                    call_events = writer.call_events(pending)
                    if hold_calls:
                        held.extend(call_events)
                    else:
                        for event in call_events:
                            yield event
                    pending = await pump.next(request)
                problems = writer.invalid_calls()
                if problems:
                    raise APIError(
                        500,
                        "the model streamed unusable tool calls: " + "; ".join(problems),
                        type="server_error",
                        code="model_output_error",
                    )
                calls = tuple(
                    ToolCall.from_openai(
                        {
                            "id": c["id"],
                            "function": {"name": c["name"], "arguments": c["arguments"]},
                        }
                    )
                    for c in writer.calls
                )
                if round_ < self.server_tools.max_rounds and self.server_tools.executable(
                    calls, call.tools
                ):
                    text = "".join(writer.content) or None
                    results = await self.server_tools.run(calls)
                    step = [
                        Message(role="assistant", content=text, tool_calls=calls),
                        *(r.to_message() for r in results),
                    ]
                    executed.extend(step)
                    conversation.extend(step)
                    writer.reset()
                    yield writer.event({}, None, **{EXECUTED_FIELD: [m.to_openai() for m in step]})
                    choice = _after_execution(choice)
                    await self.acquire(request)
                    pump = self._pump(conversation, call, choice)
                    pump.start()
                    pending = await pump.next(request)
                    continue
                for event in held:
                    yield event
                break
            finish = "tool_calls" if writer.calls else ("length" if finish == "length" else "stop")
            yield writer.final(finish)
            if call.include_usage:
                yield writer.usage(0, 0)
            yield DONE
        except ConnectionError as exc:
            error = exc
            log.info("client disconnected mid-stream; generation stopped")
        except (asyncio.CancelledError, GeneratorExit) as exc:
            error = exc
            pump.stop()
            raise
        except BaseException as exc:
            error = exc
            pump.stop()
            api_error = exception_to_api_error(exc)
            yield sse(
                {
                    "error": {
                        "message": api_error.message,
                        "type": api_error.type,
                        "param": api_error.param,
                        "code": api_error.code,
                    }
                }
            )
        finally:
            pump.stop()
            message: dict[str, Any] | None = None
            if error is None:
                message = {"role": "assistant", "content": "".join(writer.content) or None}
                if writer.calls:
                    message["tool_calls"] = [
                        {
                            "id": c["id"],
                            "type": "function",
                            "function": {"name": c["name"], "arguments": c["arguments"]},
                        }
                        for c in writer.calls
                    ]
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
