"""``fncall.chat(question, tools)``: ask a model, run the calls it makes, let it answer.

The one-call convenience over the conversation loop (``fncall.execute.conversation``): a
catalogue name or model path is loaded once per process and wrapped in a ``LocalChat``; the
calls run through an ``Executor`` with its defaults.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fncall.engine.base import ChatModel, Engine, require_chat_model
from fncall.execute.conversation import AskModel, StopReason, ToolConversation, run_conversation
from fncall.execute.executor import Executor
from fncall.models import DEFAULT_MODEL
from fncall.pipeline import LocalChat
from fncall.tools import ToolsInput
from fncall.tools.retrieval import offered_tools
from fncall.types import AssistantTurn, Message, ToolCall, ToolChoice, ToolResult, as_messages


@dataclass(frozen=True, kw_only=True)
class ChatResult:
    """What ``chat()`` did: every call, every result, the final answer and the conversation."""

    calls: tuple[ToolCall, ...]
    results: tuple[ToolResult, ...]
    text: str | None
    messages: tuple[Message, ...]
    stop_reason: StopReason = "final_answer"  # see fncall.execute.conversation

    def __str__(self) -> str:
        return self.text or ""


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine_for(model: str) -> Engine:
    """Load a model once per process; later ``chat()`` calls reuse it."""
    with _ENGINES_LOCK:
        if model not in _ENGINES:
            from fncall.engine import load_engine

            _ENGINES[model] = load_engine(model)
        return _ENGINES[model]


@atexit.register
def _close_engines() -> None:
    """Free the models ``chat()`` loaded while the interpreter is still whole: left to
    shutdown, llama.cpp's objects were freed after the modules they call were gone (an
    "Exception ignored in Llama.__del__" at exit)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        close = getattr(engine, "close", None)
        if callable(close):
            close()


def chat(
    question_or_messages: str | Sequence[Message | Mapping[str, Any]],
    tools: ToolsInput = (),
    *,
    model: str | Engine | ChatModel = DEFAULT_MODEL,
    execute: bool = True,
    tool_choice: ToolChoice | str | Mapping[str, Any] | None = None,
    parallel_tool_calls: bool = True,
    format: str = "auto",
    constrained: bool = True,
    max_steps: int = 2,
    max_tokens: int = 512,
    temperature: float = 0.0,
) -> ChatResult:
    """Ask a model, run the calls it makes, and let it answer from the results.

    ``tools``: a ToolSet, a list of Tool objects or plain functions; a ``RetrievingToolSet``
    (a large library) offers the model only the tools retrieved for this request. ``model``: a
    catalogue name or model path (loaded once and cached), an ``Engine``, or any ``ChatModel``
    (then ``format``, ``constrained``, ``max_tokens`` and ``temperature`` are the model's own). With
    ``execute=False`` the first turn's calls are returned unexecuted. At most ``max_steps``
    model turns are used; ``tool_choice``, the last step and repeated calls follow the
    conversation loop's rules (``fncall.execute.conversation``).
    """
    executor = Executor(tools)
    toolset = executor.tools
    chat_model = _chat_model(model, format, constrained, max_tokens, temperature)
    messages = as_messages(question_or_messages)
    choice = ToolChoice.parse(tool_choice, toolset.names)
    conversation = ToolConversation(
        messages,
        offered_tools(toolset, messages, choice),
        max_steps=max_steps,
        tool_choice=choice,
        parallel_tool_calls=parallel_tool_calls,
    )

    def complete(request: AskModel) -> AssistantTurn:
        return request.send(chat_model.complete)

    run = run_conversation(
        conversation, complete, executor.run if execute else (lambda calls: None), None
    )
    return ChatResult(
        calls=tuple(run.tool_calls),
        results=tuple(run.tool_results),
        text=run.final,
        messages=run.messages,
        stop_reason=run.stop_reason,
    )


def _chat_model(
    model: str | Engine | ChatModel,
    format: str,
    constrained: bool,
    max_tokens: int,
    temperature: float,
) -> ChatModel:
    if isinstance(model, str):
        model = _engine_for(model)
    if isinstance(model, Engine):
        return LocalChat(
            model,
            format=format,
            constrained=constrained,
            max_tokens=max_tokens,
            temperature=temperature,
        )
    return require_chat_model(model)
