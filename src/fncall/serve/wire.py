"""Response bodies in OpenAI's exact shape: ``chat.completion`` and ``chat.completion.chunk``."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fastapi.responses import JSONResponse

from fncall.engine.base import ChatDelta, TokenLogprob
from fncall.engine.deltas import call_deltas
from fncall.types import AssistantTurn, Message, new_call_id, valid_unicode

if TYPE_CHECKING:
    from fncall.serve.errors import APIError

log = logging.getLogger("fncall.serve")

# fncall extension: assistant+tool messages the server executed before the final answer.
EXECUTED_FIELD = "fncall_executed_messages"


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def usage_body(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


def finish_reason_of(turn: AssistantTurn) -> str:
    if turn.tool_calls:
        return "tool_calls"
    return "length" if turn.finish_reason == "length" else "stop"


def token_logprob_body(token: TokenLogprob, *, top: bool = True) -> dict[str, Any]:
    """One token's entry in OpenAI's ``logprobs.content`` (``top``: with its alternatives)."""
    body: dict[str, Any] = {
        "token": token.token,
        "logprob": token.logprob,
        "bytes": list(token.bytes),
    }
    if top:
        body["top_logprobs"] = [token_logprob_body(t, top=False) for t in token.top_logprobs]
    return body


def logprobs_body(turn: AssistantTurn) -> dict[str, Any] | None:
    """A choice's ``logprobs`` when they were asked for: one entry per content token.

    A turn that became tool calls has no content, so its ``content`` list is empty (the tokens
    the model wrote the calls with are in no OpenAI field); ``None`` when the model gave no
    log-probabilities at all."""
    if turn.tool_calls:
        return {"content": [], "refusal": None}
    scored = turn.logprobs
    if scored is None:
        return None
    return {"content": [token_logprob_body(t) for t in scored], "refusal": None}


def completion_message(turn: AssistantTurn) -> dict[str, Any]:
    """The assistant ``message`` of a completion."""
    message: dict[str, Any] = {"role": "assistant", "content": turn.content, "refusal": None}
    if turn.tool_calls:
        message["tool_calls"] = [call.to_openai() for call in turn.tool_calls]
    return message


def completion_body(
    *,
    id: str,
    created: int,
    model: str,
    turn: AssistantTurn,
    usage: dict[str, int],
    executed: Sequence[Message] = (),
    logprobs: bool = False,
) -> dict[str, Any]:
    """A ``chat.completion``; ``logprobs``: with the turn's ``logprobs_body``."""
    message = completion_message(turn)
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": logprobs_body(turn) if logprobs else None,
                "finish_reason": finish_reason_of(turn),
            }
        ],
        "usage": usage,
    }
    if executed:
        body[EXECUTED_FIELD] = [m.to_openai() for m in executed]
    return body


class StreamWriter(Protocol):
    """Frames one streamed request as SSE events: chat completion chunks (``ChunkWriter``) or
    Responses API events (``fncall.serve.responses_wire.ResponseEvents``). Each method returns
    the events to send, in order."""

    def start(self) -> list[str]: ...

    def text(self, delta: ChatDelta) -> list[str]:
        """A model turn's text as it comes (the calls wait for ``finish``)."""
        ...

    def new_turn(self) -> None:
        """The model is asked again (after executed calls, or to answer from their results)."""
        ...

    def executed(self, messages: Sequence[Message]) -> list[str]:
        """Messages the server added to the conversation (calls it ran and their results)."""
        ...

    def finish(self, turn: AssistantTurn, usage: tuple[int, int, int]) -> list[str]:
        """The last turn's calls and the end of the stream (``usage``: prompt, completion and
        cached prompt tokens of the whole request)."""
        ...

    def error(self, error: APIError) -> list[str]: ...


@dataclass
class ChunkWriter:
    """Turns ``ChatDelta``s into SSE-framed ``chat.completion.chunk`` events (a
    ``StreamWriter``).

    Renumbers call indexes to 0, 1, ... in order of appearance and makes sure each call's first
    fragment carries ``id``, ``type`` and ``function.name``.

    With ``logprobs``, a text turn's log-probabilities come in one chunk after its last
    content (an empty delta carrying ``logprobs.content`` for every token), not spread over the
    content chunks: a client that joins ``logprobs.content`` across chunks gets them all.
    """

    model: str
    include_usage: bool = False
    logprobs: bool = False
    id: str = field(default_factory=completion_id)
    created: int = field(default_factory=lambda: int(time.time()))
    content: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)  # {"id", "name", "arguments"}
    _index_map: dict[int, int] = field(default_factory=dict)

    def event(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        *,
        logprobs: dict[str, Any] | None = None,
        **extra: Any,
    ) -> str:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
            ],
        }
        body.update(extra)
        return sse(body)

    def start(self) -> list[str]:
        return [self.event({"role": "assistant", "content": "", "refusal": None})]

    def new_turn(self) -> None:
        self.content.clear()
        self.calls.clear()
        self._index_map.clear()

    def executed(self, messages: Sequence[Message]) -> list[str]:
        extra: dict[str, Any] = {EXECUTED_FIELD: [m.to_openai() for m in messages]}
        return [self.event({}, None, **extra)]

    def finish(self, turn: AssistantTurn, usage: tuple[int, int, int]) -> list[str]:
        events = [e for delta in call_deltas(turn.tool_calls) for e in self.call_events(delta)]
        events.append(self.event({}, finish_reason_of(turn)))
        if self.include_usage:
            events.append(self.usage(*usage))
        return [*events, DONE]

    def error(self, error: APIError) -> list[str]:
        return [sse(error_object(error))]

    def text(self, delta: ChatDelta) -> list[str]:
        events = []
        if delta.content:
            self.content.append(delta.content)
            events.append(self.event({"content": delta.content}))
        if self.logprobs and delta.logprobs:
            content = [token_logprob_body(t) for t in delta.logprobs]
            events.append(self.event({}, logprobs={"content": content, "refusal": None}))
        return events

    def call_events(self, delta: ChatDelta) -> list[str]:
        """Events for the tool-call part of a delta."""
        if delta.index is None and delta.name is None and not delta.arguments:
            return []
        source = delta.index if delta.index is not None else -1
        if source not in self._index_map:
            self._index_map[source] = len(self.calls)
            self.calls.append({"id": delta.id or new_call_id(), "name": "", "arguments": ""})
            index = self._index_map[source]
            call = self.calls[index]
            call["name"] = delta.name or ""
            call["arguments"] = delta.arguments or ""
            fragment: dict[str, Any] = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
            return [self.event({"tool_calls": [fragment]})]
        index = self._index_map[source]
        call = self.calls[index]
        function: dict[str, Any] = {}
        if delta.name:  # a model that spells the name over several fragments
            call["name"] += delta.name
            function["name"] = delta.name
        if delta.arguments:
            call["arguments"] += delta.arguments
            function["arguments"] = delta.arguments
        if not function:
            return []
        return [self.event({"tool_calls": [{"index": index, "function": function}]})]

    def usage(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> str:
        return sse(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage_body(prompt_tokens, completion_tokens, cached_tokens),
            }
        )


def error_object(error: APIError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": error.type,
            "param": error.param,
            "code": error.code,
        }
    }


def json_text(body: Any, **options: Any) -> str:
    """``body`` as JSON text that UTF-8 can encode: a lone surrogate in a model's answer, a tool's
    result or a request echoed back is U+FFFD (it cut a stream or made a 500)."""
    return valid_unicode(json.dumps(body, ensure_ascii=False, **options))


class JSONBody(JSONResponse):
    """Starlette's ``JSONResponse`` encoded with ``json_text``."""

    def render(self, content: Any) -> bytes:
        return json_text(content, allow_nan=False, separators=(",", ":")).encode("utf-8")


def sse(body: dict[str, Any]) -> str:
    return f"data: {json_text(body)}\n\n"


DONE = "data: [DONE]\n\n"
