"""The shared data model: every stage passes these, nothing invents its own dict shape.

All are frozen, keyword-only dataclasses. Converters to and from the OpenAI wire shape live
here too, because that shape is the lingua franca of function calling.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from fncall.errors import UserError, describe_exception

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD.

    A Python string may hold surrogates (a JSON ``"\\ud800"`` escape, a file name decoded with
    ``surrogateescape``) that UTF-8 cannot encode: a tokenizer, an HTTP body or SQLite would
    raise on them.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def new_call_id() -> str:
    """A fresh OpenAI-style call id (``call_`` + 24 hex characters)."""
    return "call_" + uuid.uuid4().hex[:24]


@dataclass(frozen=True, kw_only=True)
class Tool:
    """A function the model may call: its name, description, JSON Schema, and optionally the code.

    ``parameters`` is a JSON Schema object
    (``{"type": "object", "properties": ..., "required": ...}``).
    ``function`` is the Python callable (sync or async) that implements the tool; it is ``None`` for
    schema-only tools (imported from JSON, or evaluated but never executed).
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    strict: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise UserError(f"tool name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.parameters, Mapping):
            raise UserError(
                f"tool {self.name!r}: parameters must be a JSON Schema object (a mapping), "
                f"got {type(self.parameters).__name__}"
            )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly, so ``@tool`` leaves functions callable."""
        if self.function is None:
            raise UserError(f"tool {self.name!r} has a schema but no function to call")
        return self.function(*args, **kwargs)

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry for this tool."""
        function: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
        }
        if self.strict:
            function["strict"] = True
        return {"type": "function", "function": function}


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """One call the model asked for. ``arguments`` is always a decoded JSON object."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_call_id)

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(dict(self.arguments))},
        }

    @classmethod
    def from_openai(cls, data: Mapping[str, Any]) -> ToolCall:
        """Accept the OpenAI shape, with ``arguments`` either a JSON string or an object."""
        if not isinstance(data, Mapping):
            raise UserError(f"a tool call must be an object, got {data!r}")
        function = data.get("function", data)
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise UserError(f"a tool call needs function.name (a string), got {data!r}")
        arguments: Any = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                raise UserError(
                    f"tool call {function['name']!r}: arguments is not valid JSON ({exc.msg}): "
                    f"{arguments[:200]!r}"
                ) from None
        if not isinstance(arguments, Mapping):
            raise UserError(
                f"tool call {function['name']!r}: arguments must be a JSON object, "
                f"got {arguments!r}"
            )
        call_id = data.get("id") or new_call_id()
        return cls(name=function["name"], arguments=dict(arguments), id=str(call_id))


@dataclass(frozen=True, kw_only=True)
class ToolResult:
    """The outcome of one call: ``content`` on success, ``error`` ("Cls: message") on failure."""

    call_id: str
    name: str
    content: Any = None
    error: str | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def render(self) -> str:
        """The text the model reads back in the ``tool`` message."""
        if self.error is not None:
            return valid_unicode(f"Error: {self.error}")
        if isinstance(self.content, str):
            return valid_unicode(self.content)
        # Never raises: a tool may return what neither json nor str can show (an object whose
        # __str__ fails, an integer past Python's 4,300 digits, a structure nested too deep).
        try:
            return valid_unicode(json.dumps(self.content, ensure_ascii=False, default=str))
        except Exception:
            pass
        try:
            return valid_unicode(str(self.content))
        except Exception as exc:
            return (
                f"Error: the tool's result (a {type(self.content).__name__}) cannot be shown "
                f"as text: {valid_unicode(describe_exception(exc))}"
            )

    def to_message(self) -> Message:
        return Message(
            role="tool", content=self.render(), tool_call_id=self.call_id, name=self.name
        )


@dataclass(frozen=True, kw_only=True)
class Message:
    """One chat message; assistant ones may carry ``tool_calls``, tool ones a ``tool_call_id``."""

    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise UserError(f"message role must be one of {', '.join(ROLES)}; got {self.role!r}")
        if self.tool_calls and self.role != "assistant":
            raise UserError(f"only assistant messages carry tool_calls, not {self.role!r}")
        if not isinstance(self.tool_calls, tuple):
            object.__setattr__(self, "tool_calls", tuple(self.tool_calls))

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None and self.role == "tool":
            out["name"] = self.name
        return out

    @classmethod
    def from_openai(cls, data: Mapping[str, Any]) -> Message:
        if not isinstance(data, Mapping):
            raise UserError(f"a message must be an object with 'role', got {data!r}")
        role = data.get("role")
        if role not in ROLES:
            raise UserError(f"message role must be one of {', '.join(ROLES)}; got {role!r}")
        content = data.get("content")
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            content = "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
        if content is not None and not isinstance(content, str):
            raise UserError(f"message content must be a string or null, got {content!r}")
        calls = tuple(ToolCall.from_openai(c) for c in data.get("tool_calls") or ())
        return cls(
            role=role,
            content=content,
            tool_calls=calls,
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
        )


def as_messages(messages: str | Sequence[Message | Mapping[str, Any]]) -> list[Message]:
    """Normalise a user's input (a string, Message objects or OpenAI dicts) into messages."""
    if isinstance(messages, str):
        return [Message(role="user", content=messages)]
    if not isinstance(messages, Sequence):
        raise UserError(
            f"messages must be a string or a list of messages, got {type(messages).__name__}"
        )
    items: Sequence[Any] = messages
    return [m if isinstance(m, Message) else Message.from_openai(m) for m in items]


class TokenUsage(TypedDict):
    """Token counts as keyword arguments of ``AssistantTurn`` and ``ChatDelta``."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int


@dataclass(frozen=True, kw_only=True)
class Decision:
    """How a drafted turn's calls were judged before the turn was returned (``fncall.judge``).

    ``scores``: the log-odds of "yes" per called function, in the order they were asked (the
    judge stops at the first that passes, and asks nothing when grounding fails);
    ``calls``: what is returned when ``kept``: the draft's calls less those to functions dropped
    as ungrounded beside grounded ones (``Judge.grounded_functions``) and less optional
    arguments whose values the request never gave (``Judge.given_options``);
    ``kept``: whether the calls were returned (otherwise the turn was answered in text);
    ``repeated``: after tool results, the calls only repeated work done since the request, or
    were work it never asked for (``fncall.judge.repeats``), so nothing else was checked;
    ``similarity``: with ``Judge(min_similarity=...)``, the highest cosine between the request
    and a called function's description (``None`` when not measured);
    ``question``: whether the question decided (``False`` on a first turn under
    ``Judge(first_turn_question=False)``: grounding alone kept the calls, ``scores`` is empty);
    ``named``: under ``Judge(first_turn_question="unnamed")``, the called function the request
    names, which kept the calls without the question (``None`` when none did);
    ``confidence``: under ``first_turn_question="unsure"``, the probability the model gave the
    draft's first token (its choice of a call over text; ``None`` when not known).
    """

    draft: tuple[ToolCall, ...]
    calls: tuple[ToolCall, ...] = ()
    grounding: float
    scores: Mapping[str, float]
    kept: bool
    threshold: float
    min_grounding: float
    repeated: bool = False
    similarity: float | None = None
    question: bool = True
    named: str | None = None
    confidence: float | None = None


@dataclass(frozen=True, kw_only=True)
class TokenLogprob:
    """One generated token's log-probability and the likeliest tokens at its position.

    The distribution is the one the token was chosen from: the model's logits after
    ``logit_bias``, the presence and frequency penalties and the grammar's mask (tokens it
    forbids are never among the alternatives), renormalised, before ``temperature``, ``min_p``
    and ``top_p``. A token the grammar forced (taken without asking the model) is certain:
    ``logprob`` 0.0, and itself the only alternative. ``top_logprobs`` holds the ``k`` likeliest
    alternatives, likeliest first (their own ``top_logprobs`` are empty).
    """

    id: int
    token: str  # the token's bytes as text (an incomplete UTF-8 character becomes U+FFFD)
    bytes: bytes
    logprob: float
    top_logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AssistantTurn:
    """What one model turn produced: free text, tool calls, or both, plus the raw output."""

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    raw: str = ""
    finish_reason: str = "stop"
    prompt_tokens: int = 0  # token usage when the model reports it (0 = unknown)
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, how many a KV cache already held
    decision: Decision | None = None  # how the judge decided the draft, when it did
    # The log-probabilities of the generated tokens, when asked for (``top_logprobs``); not
    # part of equality: two turns that say the same are the same turn.
    logprobs: tuple[TokenLogprob, ...] | None = field(default=None, compare=False)

    def to_message(self) -> Message:
        return Message(role="assistant", content=self.content, tool_calls=self.tool_calls)


ToolChoiceMode = Literal["none", "auto", "required"]


@dataclass(frozen=True, kw_only=True)
class ToolChoice:
    """The OpenAI ``tool_choice`` modes, normalised.

    ``none``: answer in text. ``auto``: text or calls. ``required``: at least one call.
    A named function is ``required`` with ``allowed=(name,)``; OpenAI's ``allowed_tools`` sets
    ``allowed`` with mode ``auto`` or ``required``.
    """

    mode: ToolChoiceMode = "auto"
    allowed: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, value: Any, tool_names: Sequence[str] = ()) -> ToolChoice:
        """Accept every shape the OpenAI API accepts; reject others, naming what is accepted."""
        accepted = (
            "'none', 'auto', 'required', {'type': 'function', 'function': {'name': ...}} or "
            "{'type': 'allowed_tools', "
            "'allowed_tools': {'mode': 'auto'|'required', 'tools': [...]}}"
        )
        if value is None:
            return cls()
        if isinstance(value, ToolChoice):
            choice = value
        elif isinstance(value, str):
            if value not in ("none", "auto", "required"):
                raise UserError(f"tool_choice must be {accepted}; got {value!r}")
            choice = cls(mode=value)  # type: ignore[arg-type]
        elif isinstance(value, Mapping) and value.get("type") == "function":
            function = value.get("function") or {}
            name = function.get("name") if isinstance(function, Mapping) else None
            if not isinstance(name, str):
                raise UserError(
                    f"tool_choice of type 'function' needs function.name; got {value!r}"
                )
            choice = cls(mode="required", allowed=(name,))
        elif isinstance(value, Mapping) and value.get("type") == "allowed_tools":
            spec = value.get("allowed_tools") or {}
            mode = spec.get("mode", "auto") if isinstance(spec, Mapping) else None
            tools = spec.get("tools", []) if isinstance(spec, Mapping) else None
            if mode not in ("auto", "required") or not isinstance(tools, list):
                raise UserError(f"tool_choice must be {accepted}; got {value!r}")
            names = []
            for entry in tools:
                fn = entry.get("function", entry) if isinstance(entry, Mapping) else None
                name = fn.get("name") if isinstance(fn, Mapping) else None
                if not isinstance(name, str):
                    raise UserError(f"allowed_tools entries need a function name; got {entry!r}")
                names.append(name)
            choice = cls(mode=mode, allowed=tuple(names))
        else:
            raise UserError(f"tool_choice must be {accepted}; got {value!r}")
        if choice.allowed is not None and tool_names:
            unknown = [n for n in choice.allowed if n not in tool_names]
            if unknown:
                raise UserError(
                    f"tool_choice names unknown tool(s) {unknown}; available: {sorted(tool_names)}"
                )
        return choice

    def selected(self, tools: Sequence[Tool]) -> list[Tool]:
        """The tools the model may call under this choice."""
        if self.mode == "none":
            return []
        if self.allowed is None:
            return list(tools)
        return [t for t in tools if t.name in self.allowed]
