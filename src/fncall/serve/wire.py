"""Response bodies in OpenAI's exact shape: ``chat.completion`` and ``chat.completion.chunk``."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fncall.engine.base import ChatDelta
from fncall.types import AssistantTurn, Message, new_call_id

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
) -> dict[str, Any]:
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
                "logprobs": None,
                "finish_reason": finish_reason_of(turn),
            }
        ],
        "usage": usage,
    }
    if executed:
        body[EXECUTED_FIELD] = [m.to_openai() for m in executed]
    return body


@dataclass
class ChunkWriter:
    """Turns ``ChatDelta``s into SSE-framed ``chat.completion.chunk`` events.

    Renumbers call indexes to 0, 1, ... in order of appearance and makes sure each call's first
    fragment carries ``id``, ``type`` and ``function.name``.
    """

    model: str
    id: str = field(default_factory=completion_id)
    created: int = field(default_factory=lambda: int(time.time()))
    content: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)  # {"id", "name", "arguments"}
    _index_map: dict[int, int] = field(default_factory=dict)

    def event(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        body.update(extra)
        return sse(body)

    def first(self) -> str:
        return self.event({"role": "assistant", "content": "", "refusal": None})

    def reset(self) -> None:
        """Start a new model turn (after the server executed the previous one's calls)."""
        self.content.clear()
        self.calls.clear()
        self._index_map.clear()

    def content_events(self, delta: ChatDelta) -> list[str]:
        if not delta.content:
            return []
        self.content.append(delta.content)
        return [self.event({"content": delta.content})]

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

    def final(self, finish_reason: str) -> str:
        return self.event({}, finish_reason)

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


def sse(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


DONE = "data: [DONE]\n\n"
