"""The engine seams.

``Engine`` is text-level: it turns a prompt into tokens and back, optionally under a constraint.
It knows nothing of tools or templates (those live in ``fncall.formats``).

``ChatModel`` is what the agent loop, evaluation and the server talk to: messages + tools in,
an ``AssistantTurn`` (or a stream of ``ChatDelta``) out. ``LocalChat`` (engine + format +
constraint) and ``RemoteChat`` (any OpenAI-compatible endpoint) implement it.

What a chat model can do beyond ``complete`` and ``stream`` is declared, not probed: its
``capabilities`` record (``ChatCapabilities``, all defaults off) says whether it may be called
from several threads at once and how many requests it batches. Implementations subclass
``ChatModel`` to inherit the defaults and override what they offer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from fncall.errors import UserError
from fncall.types import AssistantTurn, Message, TokenLogprob, Tool, ToolChoice

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
    # One entry per generated token when ``top_logprobs`` was asked for (``None`` otherwise);
    # tokens after a stop string that ended the text are left out.
    logprobs: tuple[TokenLogprob, ...] | None = None


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
        top_p: float = 1.0,
        min_p: float = 0.0,
        logit_bias: Mapping[int, float] | None = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        top_logprobs: int | None = None,
    ) -> Generation:
        """Sampling fields with OpenAI's meaning (see ``fncall.engine.decoding``):
        ``logit_bias`` adds to the logits of token ids, the penalties lower tokens already
        generated, ``top_logprobs`` (0-20; ``None``: not asked) fills ``Generation.logprobs``.
        ``min_p`` (0-1; 0: off) is vLLM's and llama.cpp's extension: when sampling, tokens less
        likely than ``min_p`` times the likeliest token are dropped.
        An engine written before these keywords existed is called without them unless they
        are asked for (then ``LocalChat`` refuses the request, naming the field)."""
        ...

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
    # Token usage, on the delta that ends the turn (0 = not reported).
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    # The log-probabilities of a text turn's tokens, all on the delta that ends it (when asked).
    logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class ChatCapabilities:
    """What a ``ChatModel`` offers beyond one request at a time.

    ``thread_safe``: ``complete``/``stream`` may run in several threads at once (an HTTP client;
    not a local engine, which holds one KV cache). ``max_batch_size``: how many requests it
    serves at once to advantage (a batching backend); the server lets that many in.
    """

    thread_safe: bool = False
    max_batch_size: int = 1

    def __post_init__(self) -> None:
        size = self.max_batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise UserError(f"max_batch_size must be a positive integer, got {size!r}")
        if size > 1 and not self.thread_safe:
            raise UserError("a model that batches requests must be thread_safe")


class ChatModel(Protocol):
    """Messages + tools in, one assistant turn out. Subclass it to inherit ``capabilities``.

    ``tool_choice`` and ``parallel_tool_calls`` are what the model is asked for; a constrained
    ``LocalChat`` cannot break them, a remote or unconstrained model may. The conversation loop
    (``fncall.execute.conversation``) enforces both for every caller, whatever the model did.
    """

    capabilities: ClassVar[ChatCapabilities] = ChatCapabilities()

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


def require_chat_model(model: Any) -> ChatModel:
    """``model`` if it is a ``ChatModel`` (``complete``, ``stream`` and ``capabilities``), else a
    ``UserError`` saying what is missing."""
    missing = [name for name in ("complete", "stream") if not callable(getattr(model, name, None))]
    if not isinstance(getattr(model, "capabilities", None), ChatCapabilities):
        missing.append("capabilities (subclass fncall.ChatModel to inherit the defaults)")
    if missing:
        raise UserError(
            f"model must be a ChatModel; {type(model).__name__} lacks: {', '.join(missing)}"
        )
    return model  # type: ignore[no-any-return]
