"""The engine seams.

``Engine`` is text-level: it turns a prompt into tokens and back, optionally under a constraint.
It knows nothing of tools or templates (those live in ``fncall.formats``).

``ChatModel`` is what the agent loop, evaluation and the server talk to: messages + tools in,
an ``AssistantTurn`` (or a stream of ``ChatDelta``) out. ``LocalChat`` (engine + format +
constraint) and ``RemoteChat`` (any OpenAI-compatible endpoint) implement it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fncall.types import AssistantTurn, Message, Tool, ToolChoice

if TYPE_CHECKING:
    from fncall.constrain.base import Constraint


@dataclass(frozen=True, kw_only=True)
class Generation:
    """The result of one ``Engine.generate`` call."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from the KV cache (shared prefix)
    finish_reason: str = "stop"  # "stop" | "length"
    seconds: float = 0.0


@runtime_checkable
class Engine(Protocol):
    """A text generator over a tokenizer: one model, loaded once."""

    name: str

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        seed: int | None = None,
        constraint: Constraint | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Generation: ...

    @property
    def chat_template(self) -> str | None:
        """The model's own Jinja chat template (GGUF metadata / tokenizer config), if any."""
        ...

    def vocabulary(self) -> list[bytes]:
        """The bytes of every token id, for constraint backends."""
        ...


@dataclass(frozen=True, kw_only=True)
class ChatDelta:
    """One streamed piece of an assistant turn, in OpenAI's delta shape.

    Either ``content`` (a text fragment) or a tool-call fragment: ``index`` identifies the call;
    the first fragment of a call carries ``id`` and ``name``; ``arguments`` fragments concatenate
    to the call's JSON arguments.
    """

    content: str | None = None
    index: int | None = None
    id: str | None = None
    name: str | None = None
    arguments: str | None = None
    finish_reason: str | None = None


class ChatModel(Protocol):
    """Messages + tools in, one assistant turn out."""

    def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool] = (),
        *,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool = True,
        **options: Any,
    ) -> AssistantTurn: ...

    def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool] = (),
        *,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool = True,
        **options: Any,
    ) -> Iterator[ChatDelta]: ...
