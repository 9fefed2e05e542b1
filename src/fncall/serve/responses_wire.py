"""Responses API bodies in OpenAI's shape: the ``response`` object and its stream events.

A turn becomes output items: a ``message`` (one ``output_text`` part) when it has text, then one
``function_call`` item per call. ``ResponseEvents`` is the ``StreamWriter`` of
``POST /v1/responses`` with ``stream: true``: ``response.created``, ``response.in_progress``,
the text as ``response.output_text.delta`` events inside its message item, each call as
``response.output_item.added`` / ``response.function_call_arguments.delta`` / ``.done`` /
``response.output_item.done``, and ``response.completed`` (``response.incomplete`` when the
token limit ended the answer) carrying the whole response. Events are numbered by
``sequence_number`` from 0.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fncall.engine.base import ChatDelta
from fncall.serve.errors import APIError
from fncall.serve.responses import ResponseRequest
from fncall.serve.wire import json_text, logprobs_body, token_logprob_body
from fncall.types import AssistantTurn, Message, ToolCall


def response_id() -> str:
    return "resp_" + uuid.uuid4().hex


def _item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def request_echo(body: ResponseRequest) -> dict[str, Any]:
    """The request's settings as a response repeats them."""
    text_format = {"type": "text"}
    if body.text is not None and body.text.format is not None:
        text_format = body.text.format.model_dump(by_alias=True, exclude_none=True)
    tool_choice: Any = body.tool_choice or "auto"
    if not isinstance(tool_choice, str):
        tool_choice = tool_choice.model_dump()
    return {
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "tools": [tool.model_dump(exclude_none=True) for tool in body.tools or ()],
        "tool_choice": tool_choice,
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "text": {"format": text_format},
        "metadata": body.metadata or {},
        "store": False,  # nothing is stored, whatever was asked
        "previous_response_id": None,
        "truncation": "disabled",
        "user": body.user,
    }


def response_usage(
    prompt_tokens: int, completion_tokens: int, cached_tokens: int
) -> dict[str, Any]:
    return {
        "input_tokens": prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens},
        "output_tokens": completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt_tokens + completion_tokens,
    }


def message_item(
    text: str,
    item_id: str,
    status: str = "completed",
    logprobs: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A message output item; ``logprobs``: its text's tokens (``token_logprob_body``)."""
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": list(logprobs)}
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [part] if status == "completed" else [],
    }


def call_item(call: ToolCall, item_id: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call.id,
        "name": call.name,
        "arguments": json.dumps(dict(call.arguments), ensure_ascii=False)
        if status == "completed"
        else "",
        "status": status,
    }


def output_items(turn: AssistantTurn, *, logprobs: bool = False) -> list[dict[str, Any]]:
    """A turn's output items; ``logprobs``: its text's tokens on the output_text part (none for
    a turn that became tool calls, as in chat completions)."""
    scored = (logprobs_body(turn) or {}).get("content", []) if logprobs else []
    items = [message_item(turn.content, _item_id("msg"), logprobs=scored)] if turn.content else []
    return items + [call_item(call, _item_id("fc")) for call in turn.tool_calls]


def response_body(
    *,
    id: str,
    created_at: int,
    model: str,
    echo: dict[str, Any],
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    finish_reason: str | None,
) -> dict[str, Any]:
    """A ``response`` object; ``finish_reason`` ``None`` while in progress."""
    status = "in_progress"
    incomplete = None
    if finish_reason == "length":
        status, incomplete = "incomplete", {"reason": "max_output_tokens"}
    elif finish_reason is not None:
        status = "completed"
    return {
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        "usage": usage,
        **echo,
    }


@dataclass
class ResponseEvents:
    """The Responses API stream of one request (a ``fncall.serve.wire.StreamWriter``).

    With ``logprobs``, the text's log-probabilities come with ``response.output_text.done``
    (and the finished item), not with each ``response.output_text.delta``."""

    model: str
    echo: dict[str, Any]
    logprobs: bool = False
    id: str = field(default_factory=response_id)
    created_at: int = field(default_factory=lambda: int(time.time()))
    output: list[dict[str, Any]] = field(default_factory=list)
    _sequence: int = 0
    _message_id: str | None = None
    _text: list[str] = field(default_factory=list)
    _scored: list[dict[str, Any]] = field(default_factory=list)

    def _event(self, type: str, **fields: Any) -> str:
        body = {"type": type, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return f"event: {type}\ndata: {json_text(body)}\n\n"

    def _response(self, finish_reason: str | None, usage: dict[str, Any] | None) -> dict[str, Any]:
        return response_body(
            id=self.id,
            created_at=self.created_at,
            model=self.model,
            echo=self.echo,
            output=list(self.output),
            usage=usage,
            finish_reason=finish_reason,
        )

    def start(self) -> list[str]:
        response = self._response(None, None)
        return [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=response),
        ]

    def text(self, delta: ChatDelta) -> list[str]:
        if self.logprobs and delta.logprobs:
            self._scored += [token_logprob_body(t) for t in delta.logprobs]
        if not delta.content:
            return []
        events = []
        if self._message_id is None:
            self._message_id = _item_id("msg")
            item = message_item("", self._message_id, status="in_progress")
            events.append(
                self._event("response.output_item.added", output_index=len(self.output), item=item)
            )
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=self._message_id,
                    output_index=len(self.output),
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                )
            )
        self._text.append(delta.content)
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=self._message_id,
                output_index=len(self.output),
                content_index=0,
                delta=delta.content,
                logprobs=[],
            )
        )
        return events

    def _close_message(self) -> list[str]:
        """The open message item's done events; it joins the output."""
        if self._message_id is None:
            return []
        text, item_id, index = "".join(self._text), self._message_id, len(self.output)
        scored = list(self._scored)
        item = message_item(text, item_id, logprobs=scored)
        self.output.append(item)
        self._message_id = None
        self._text.clear()
        self._scored.clear()
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        return [
            self._event("response.output_text.done", **where, text=text, logprobs=scored),
            self._event("response.content_part.done", **where, part=item["content"][0]),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def new_turn(self) -> None:
        """Nothing to do: text streamed so far stays in its message item (the client has seen
        it), which the next turn's text continues or ``executed``/``finish`` closes."""

    def executed(self, messages: Sequence[Message]) -> list[str]:
        # Calls the server ran are not output items: the client has nothing to answer.
        return self._close_message()

    def finish(self, turn: AssistantTurn, usage: tuple[int, int, int]) -> list[str]:
        events = self._close_message()
        for call in turn.tool_calls:
            item_id, index = _item_id("fc"), len(self.output)
            arguments = json.dumps(dict(call.arguments), ensure_ascii=False)
            events += [
                self._event(
                    "response.output_item.added",
                    output_index=index,
                    item=call_item(call, item_id, status="in_progress"),
                ),
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item_id,
                    output_index=index,
                    delta=arguments,
                ),
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item_id,
                    output_index=index,
                    name=call.name,
                    arguments=arguments,
                ),
            ]
            item = call_item(call, item_id)
            self.output.append(item)
            events.append(self._event("response.output_item.done", output_index=index, item=item))
        response = self._response(turn.finish_reason or "stop", response_usage(*usage))
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        return [*events, self._event(kind, response=response)]

    def error(self, error: APIError) -> list[str]:
        return [self._event("error", code=error.code, message=error.message, param=error.param)]
