"""A turn as OpenAI-shaped stream deltas, and a stream of deltas back into one turn.

``ChatModel.stream`` implementations cut turns with ``call_deltas`` / ``turn_to_deltas``; every
consumer of a stream (``fncall chat``, the server, tests) puts it back together with
``assemble_turn``, so a stream and ``complete`` always describe the same turn.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from fncall.engine.base import ChatDelta, Generation
from fncall.errors import ModelOutputError
from fncall.types import AssistantTurn, TokenUsage, ToolCall


def call_deltas(calls: Sequence[ToolCall], *, chunk_size: int | None = None) -> Iterator[ChatDelta]:
    """Per call a header delta (index, id, name), then its JSON arguments: whole, or in
    fragments of ``chunk_size`` characters."""
    for index, call in enumerate(calls):
        yield ChatDelta(index=index, id=call.id, name=call.name, arguments="")
        arguments = json.dumps(dict(call.arguments), ensure_ascii=False)
        for piece in _chunks(arguments, chunk_size):
            yield ChatDelta(index=index, arguments=piece)


def turn_to_deltas(turn: AssistantTurn, *, chunk_size: int | None = None) -> list[ChatDelta]:
    """A whole turn as deltas: content fragments, the calls, then the finish reason."""
    deltas = [ChatDelta(content=piece) for piece in _chunks(turn.content or "", chunk_size)]
    deltas.extend(call_deltas(turn.tool_calls, chunk_size=chunk_size))
    finish = "tool_calls" if turn.tool_calls else turn.finish_reason
    deltas.append(ChatDelta(finish_reason=finish, **usage_of(turn)))
    return deltas


def usage_of(counted: AssistantTurn | Generation) -> TokenUsage:
    """The token counts of a turn or a generation, as the keyword arguments of a ``ChatDelta``
    or an ``AssistantTurn``."""
    return {
        "prompt_tokens": counted.prompt_tokens,
        "completion_tokens": counted.completion_tokens,
        "cached_tokens": counted.cached_tokens,
    }


def assemble_turn(deltas: Iterable[ChatDelta]) -> AssistantTurn:
    """Put a stream back together into one turn (argument fragments concatenated and decoded).
    Raises ``ModelOutputError`` when a call has no name or its arguments are not a JSON object."""
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish = "stop"
    usage = TokenUsage(prompt_tokens=0, completion_tokens=0, cached_tokens=0)
    for delta in deltas:
        usage["prompt_tokens"] += delta.prompt_tokens
        usage["completion_tokens"] += delta.completion_tokens
        usage["cached_tokens"] += delta.cached_tokens
        if delta.content:
            content.append(delta.content)
        if delta.index is not None:
            entry = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
            entry["id"] = delta.id or entry["id"]
            entry["name"] += delta.name or ""
            entry["arguments"] += delta.arguments or ""
        if delta.finish_reason:
            finish = delta.finish_reason
    text = "".join(content)
    tool_calls = []
    for position, index in enumerate(sorted(calls)):
        entry = calls[index]
        if not entry["name"]:
            raise ModelOutputError(f"streamed call {position} has no function name", raw=text)
        try:
            arguments = json.loads(entry["arguments"] or "{}")
        except json.JSONDecodeError as exc:
            raise ModelOutputError(
                f"streamed arguments of call {position} ({entry['name']}) are not JSON ({exc.msg})",
                raw=entry["arguments"],
            ) from None
        except (RecursionError, ValueError) as exc:  # nested too deep; an integer too long
            raise ModelOutputError(
                f"streamed arguments of call {position} ({entry['name']}) cannot be decoded "
                f"({type(exc).__name__}: {str(exc).split(';')[0]})",
                raw=entry["arguments"],
            ) from None
        if not isinstance(arguments, dict):
            raise ModelOutputError(
                f"streamed arguments of call {position} ({entry['name']}) are not a JSON object",
                raw=entry["arguments"],
            )
        kwargs = {"id": entry["id"]} if entry["id"] else {}
        tool_calls.append(ToolCall(name=entry["name"], arguments=arguments, **kwargs))
    return AssistantTurn(
        content=text or None,
        tool_calls=tuple(tool_calls),
        raw=text,
        finish_reason=finish,
        **usage,
    )


def _chunks(text: str, size: int | None) -> list[str]:
    if size is None:
        return [text] if text else []
    return [text[i : i + size] for i in range(0, len(text), size)]


def run_streamed(
    job: Callable[[Callable[[str, Any], None]], Any], *, name: str
) -> Iterator[tuple[str, Any]]:
    """Run ``job(put)`` in a thread and yield each ``(kind, value)`` it puts, as it puts it,
    then ``("done", what it returned)``. Its exception is raised here, in the consumer: how a
    blocking generation with an ``on_text`` callback becomes a stream."""
    pieces: queue.Queue[tuple[str, Any]] = queue.Queue()

    def work() -> None:
        try:
            pieces.put(("done", job(lambda kind, value: pieces.put((kind, value)))))
        except BaseException as exc:  # handed to the consumer, re-raised there
            pieces.put(("error", exc))

    threading.Thread(target=work, name=name, daemon=True).start()
    while True:
        kind, value = pieces.get()
        if kind == "error":
            raise value
        yield kind, value
        if kind == "done":
            return
