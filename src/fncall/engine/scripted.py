"""Scripted fakes for fast, offline tests: a ``ChatModel`` and an ``Engine`` that replay a script.

``ScriptedChat`` replays ``AssistantTurn``s (or callables that build one from the request) and
records every request it receives, so a test can assert on what the model was shown.
``ScriptedEngine`` does the same one level down, replaying generated texts for a prompt.
A replay is certain: asked for log-probabilities, each scripted byte token has 0.0 (probability
1), and no ``logit_bias`` or penalty can change a certain choice; they are validated and
recorded for a test to inspect.

Both raise ``ScriptExhaustedError`` when asked for more than the script holds: a test that
silently got an empty answer would pass for the wrong reason.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fncall.engine.base import ChatDelta, ChatModel, Generation, TokenLogprob
from fncall.engine.decoding import check_min_p, check_sampling
from fncall.engine.deltas import turn_to_deltas
from fncall.errors import UserError
from fncall.types import AssistantTurn, Message, Tool, ToolChoice, valid_unicode

if TYPE_CHECKING:
    from fncall.constrain.base import Constraint

TurnScript = Callable[[Sequence[Message], Sequence[Tool]], "AssistantTurn | str"]
ScriptEntry = AssistantTurn | str | TurnScript

EOS_TOKEN_ID = 256  # ScriptedEngine's vocabulary: the 256 single bytes, then end-of-sequence


class ScriptExhaustedError(UserError):
    """A scripted fake was asked for more outputs than its script holds."""


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    """One request ``ScriptedChat`` received, as the model saw it."""

    messages: tuple[Message, ...]
    tools: tuple[Tool, ...]
    tool_choice: ToolChoice | None
    parallel_tool_calls: bool
    options: dict[str, Any] = field(default_factory=dict)
    streamed: bool = False


class ScriptedChat(ChatModel):
    """A ``ChatModel`` that replays a queue of turns.

    Each script entry is an ``AssistantTurn``, a string (shorthand for a text-only turn), or a
    callable ``(messages, tools) -> AssistantTurn | str`` for turns that depend on the request.
    ``stream()`` yields the same turn as OpenAI-shaped ``ChatDelta``s, cut into fragments of
    ``chunk_size`` characters so consumers must reassemble them.
    """

    def __init__(self, script: Iterable[ScriptEntry] = (), *, chunk_size: int = 4) -> None:
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise UserError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.name = "scripted"
        self.chunk_size = chunk_size
        self.requests: list[ChatRequest] = []
        self._script: deque[ScriptEntry] = deque()
        self.enqueue(*script)

    def enqueue(self, *entries: ScriptEntry) -> ScriptedChat:
        """Append turns to the script; returns ``self`` for chaining."""
        for entry in entries:
            if not isinstance(entry, AssistantTurn | str) and not callable(entry):
                raise UserError(
                    "script entries must be an AssistantTurn, a string, or a callable "
                    f"(messages, tools) -> AssistantTurn; got {entry!r}"
                )
            self._script.append(entry)
        return self

    @property
    def remaining(self) -> int:
        """How many scripted turns have not been replayed yet."""
        return len(self._script)

    def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool] = (),
        *,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool = True,
        **options: Any,
    ) -> AssistantTurn:
        return self._next_turn(
            messages, tools, tool_choice, parallel_tool_calls, options, streamed=False
        )

    def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool] = (),
        *,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool = True,
        **options: Any,
    ) -> Iterator[ChatDelta]:
        # Take the turn now, not lazily, so the request is recorded even if nobody iterates.
        turn = self._next_turn(
            messages, tools, tool_choice, parallel_tool_calls, options, streamed=True
        )
        return iter(turn_to_deltas(turn, chunk_size=self.chunk_size))

    def _next_turn(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        tool_choice: ToolChoice | None,
        parallel_tool_calls: bool,
        options: dict[str, Any],
        *,
        streamed: bool,
    ) -> AssistantTurn:
        request = ChatRequest(
            messages=tuple(messages),
            tools=tuple(tools),
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            options=dict(options),
            streamed=streamed,
        )
        self.requests.append(request)
        if not self._script:
            last = next((m.content for m in reversed(request.messages) if m.content), None)
            raise ScriptExhaustedError(
                f"ScriptedChat's script is exhausted: request #{len(self.requests)} arrived after "
                f"{len(self.requests) - 1} scripted turn(s) were replayed (last message: "
                f"{(last or '')[:200]!r}); enqueue() more turns"
            )
        entry = self._script.popleft()
        if callable(entry) and not isinstance(entry, AssistantTurn):
            entry = entry(request.messages, request.tools)
        if isinstance(entry, str):
            return AssistantTurn(content=entry, raw=entry)
        if not isinstance(entry, AssistantTurn):
            raise UserError(
                f"a scripted callable must return an AssistantTurn or a string, got {entry!r}"
            )
        return entry


@dataclass(frozen=True, kw_only=True)
class GenerateRequest:
    """One request ``ScriptedEngine`` received."""

    prompt: str
    max_tokens: int
    temperature: float
    stop: tuple[str, ...]
    seed: int | None
    constraint: Any
    top_p: float = 1.0
    min_p: float = 0.0
    logit_bias: dict[int, float] | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    top_logprobs: int | None = None


class ScriptedEngine:
    """A text-level ``Engine`` that replays scripted generations.

    Tokens are bytes: the vocabulary is the 256 single bytes plus an end-of-sequence token
    (id ``EOS_TOKEN_ID``, empty bytes), so ``max_tokens`` counts UTF-8 bytes. ``stop`` strings
    cut the text like a real engine would. With ``check_constraint=True`` (the default), a
    ``constraint`` passed to ``generate`` must accept the scripted text byte by byte, so tests
    of grammars fail when the script breaks the grammar instead of passing unconstrained.
    """

    def __init__(
        self,
        outputs: Iterable[Generation | str] = (),
        *,
        chat_template: str | None = None,
        check_constraint: bool = True,
    ) -> None:
        self.name = "scripted"
        self.check_constraint = check_constraint
        self.requests: list[GenerateRequest] = []
        self._chat_template = chat_template
        self._outputs: deque[Generation | str] = deque()
        self.enqueue(*outputs)

    def enqueue(self, *outputs: Generation | str) -> ScriptedEngine:
        for output in outputs:
            if not isinstance(output, Generation | str):
                raise UserError(f"scripted outputs must be Generation or str, got {output!r}")
            self._outputs.append(output)
        return self

    @property
    def remaining(self) -> int:
        return len(self._outputs)

    @property
    def chat_template(self) -> str | None:
        return self._chat_template

    @chat_template.setter
    def chat_template(self, template: str | None) -> None:
        self._chat_template = template

    def vocabulary(self) -> list[bytes]:
        return [bytes([i]) for i in range(256)] + [b""]

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
        """Replay the next scripted output, cut by ``stop`` and ``max_tokens``. With
        ``top_logprobs`` set, a scripted ``Generation``'s own ``logprobs`` are returned, or
        else each byte token is certain (see the module docstring)."""
        prompt = valid_unicode(prompt)  # as a tokenizer reads it (see TransformersEngine)
        sampling = check_sampling(
            vocab_size=EOS_TOKEN_ID + 1,
            logit_bias=logit_bias,
            presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty,
            top_logprobs=top_logprobs,
        )
        self.requests.append(
            GenerateRequest(
                prompt=prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                stop=tuple(stop),
                seed=seed,
                constraint=constraint,
                top_p=top_p,
                min_p=check_min_p(min_p),
                **sampling,
            )
        )
        if not self._outputs:
            raise ScriptExhaustedError(
                f"ScriptedEngine's script is exhausted: generate call #{len(self.requests)} "
                f"arrived after {len(self.requests) - 1} scripted output(s); enqueue() more "
                f"(prompt ends with {prompt[-200:]!r})"
            )
        output = self._outputs.popleft()
        generation = output if isinstance(output, Generation) else Generation(text=output)
        text, finish = generation.text, generation.finish_reason
        cuts = [text.find(s) for s in stop if s and s in text]
        if cuts:
            text, finish = text[: min(cuts)], "stop"
        encoded = text.encode()
        if len(encoded) > max_tokens:
            text, finish = encoded[:max_tokens].decode(errors="ignore"), "length"
        if constraint is not None and self.check_constraint:
            self._check_constraint(constraint, text, finished=finish == "stop")
        if on_text is not None and text:
            on_text(text)
        logprobs = None
        if top_logprobs is not None:
            logprobs = generation.logprobs or _certain(text.encode(), top_logprobs)
        return Generation(
            text=text,
            prompt_tokens=len(prompt.encode()),
            completion_tokens=len(text.encode()),
            cached_tokens=generation.cached_tokens,
            finish_reason=finish,
            seconds=generation.seconds,
            logprobs=logprobs,
        )

    def _check_constraint(self, constraint: Constraint, text: str, *, finished: bool) -> None:
        matcher = constraint.matcher(self.vocabulary(), [EOS_TOKEN_ID])
        for position, byte in enumerate(text.encode()):
            try:
                matcher.advance(byte)
            except Exception as exc:
                raise UserError(
                    f"scripted text violates the constraint at byte {position} "
                    f"({text.encode()[: position + 1]!r}): {exc}"
                ) from exc
        if finished and not matcher.is_finished:
            try:
                matcher.advance(EOS_TOKEN_ID)
            except Exception as exc:
                raise UserError(
                    f"scripted text {text!r} is incomplete under the constraint: {exc}"
                ) from exc


def _certain(data: bytes, top: int) -> tuple[TokenLogprob, ...]:
    """The log-probabilities of a replayed text: each byte token chosen with certainty."""
    out = []
    for byte in data:
        piece = bytes([byte])
        token = piece.decode("utf-8", errors="replace")
        alone = TokenLogprob(id=byte, token=token, bytes=piece, logprob=0.0)
        out.append(
            TokenLogprob(
                id=byte, token=token, bytes=piece, logprob=0.0, top_logprobs=(alone,) if top else ()
            )
        )
    return tuple(out)
