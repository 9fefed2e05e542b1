"""Structured outputs: an answer that is one JSON value under the request's JSON Schema.

``ResponseSchema`` is the request's ``response_format`` (chat completions) or ``text.format``
(responses). ``SchemaAnswers(model, schema)`` has ``ChatModel``'s ``complete``/``stream`` and
answers under it:

- A ``LocalChat`` answers under a grammar compiled from the schema
  (``fncall.constrain.answer``): valid by construction. With tools offered, the model first
  decides as usual; a turn with calls is returned as it is, and a turn that answered in text is
  replaced by the answer written under the schema (its tokens are counted in ``usage``). The
  schema is shown to the model in the system message; ``stop`` does not apply (the grammar
  ends the answer).
- Any other model (remote, scripted) is asked with ``response_format`` and its text answer is
  validated against the schema; an invalid one is a ``ModelOutputError``, which the
  conversation loop feeds back to the model like any unusable output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fncall.constrain.answer import build_answer_constraint
from fncall.constrain.base import Constraint
from fncall.engine.base import ChatDelta, ChatModel, Generation
from fncall.engine.deltas import assemble_turn, run_streamed, turn_to_deltas, usage_of
from fncall.errors import ModelOutputError, SchemaError, UserError
from fncall.pipeline import GENERATION_OPTIONS, LocalChat, engine_sampling
from fncall.serve.errors import RequestError
from fncall.tools import keywords
from fncall.tools.validation import schema_validator
from fncall.types import AssistantTurn, Message, Tool, ToolChoice

# What LocalChat's engine is given for a schema answer (stop: the grammar ends the answer).
_ACCEPTED_OPTIONS = GENERATION_OPTIONS
_ENGINE_OPTIONS = frozenset(_ACCEPTED_OPTIONS) - {"stop"}


@dataclass(frozen=True, kw_only=True)
class ResponseSchema:
    """An answer format: ``schema`` is ``None`` for any JSON object (``json_object``).
    ``param`` names the request field it came from, for errors."""

    name: str
    schema: dict[str, Any] | None
    strict: bool = False
    description: str | None = None
    param: str = "response_format"

    def __post_init__(self) -> None:
        if self.schema is not None:
            try:
                schema_validator(self.schema, tool_name=self.name)
            except SchemaError as exc:
                raise RequestError(f"not a valid JSON Schema: {exc}", param=self.param) from None

    def constraint(self) -> Constraint:
        """The grammar of this answer; a ``RequestError`` names what it cannot enforce."""
        try:
            return build_answer_constraint(self.schema)
        except UserError as exc:
            raise RequestError(str(exc), param=self.param) from None

    def response_format(self) -> dict[str, Any]:
        """This format as a chat completion's ``response_format``, for models asked with it."""
        if self.schema is None:
            return {"type": "json_object"}
        json_schema: dict[str, Any] = {"name": self.name, "schema": self.schema}
        if self.strict:
            json_schema["strict"] = True
        if self.description:
            json_schema["description"] = self.description
        return {"type": "json_schema", "json_schema": json_schema}

    def instruction(self) -> str:
        if self.schema is None:
            return "Answer with one JSON object and nothing else."
        described = f" ({self.description})" if self.description else ""
        return (
            f"Answer with one JSON value{described} and nothing else, following this JSON "
            f"Schema:\n{json.dumps(self.schema, ensure_ascii=False)}"
        )

    def check(self, text: str) -> None:
        """Raise ``ModelOutputError`` unless ``text`` is a JSON value valid under the schema."""
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ModelOutputError(
                f"the answer must be JSON ({self.param}), but it is not: {exc}", raw=text
            ) from None
        if self.schema is None:
            if not isinstance(value, dict):
                raise ModelOutputError("the answer must be a JSON object", raw=text)
            return
        validator = schema_validator(self.schema, tool_name=self.name)
        try:
            with keywords.pattern_budget():  # all the answer's pattern matching in one budget
                problems = [error.message for error in validator.iter_errors(value)]
        except RecursionError:  # a recursive schema ($ref "#") and an answer nested 300 deep
            raise ModelOutputError(
                f"the answer is nested too deep to check against the {self.name!r} schema",
                raw=text,
            ) from None
        except keywords.PatternTimeout as exc:
            raise ModelOutputError(
                f"the answer could not be checked against the {self.name!r} schema: {exc}",
                raw=text,
            ) from None
        if problems:
            raise ModelOutputError(
                f"the answer does not follow the {self.name!r} schema: " + "; ".join(problems[:5]),
                raw=text,
            )


class SchemaAnswers:
    """``model``'s ``complete`` and ``stream``, answering under ``schema`` (see the module)."""

    def __init__(self, model: ChatModel, schema: ResponseSchema) -> None:
        self.model = model
        self.schema = schema

    def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool] = (),
        *,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool = True,
        **options: Any,
    ) -> AssistantTurn:
        if not isinstance(self.model, LocalChat):
            turn = self.model.complete(
                messages,
                tools,
                tool_choice=tool_choice,
                parallel_tool_calls=parallel_tool_calls,
                response_format=self.schema.response_format(),
                **options,
            )
            return self._checked(turn)
        decided = self._decide(messages, tools, tool_choice, parallel_tool_calls, options)
        if decided is not None and decided.tool_calls:
            return decided
        generation = self._generate(self.model, messages, options)
        return _answer_turn(generation, decided)

    def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool] = (),
        *,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool = True,
        **options: Any,
    ) -> Iterator[ChatDelta]:
        if not isinstance(self.model, LocalChat):
            deltas = self.model.stream(
                messages,
                tools,
                tool_choice=tool_choice,
                parallel_tool_calls=parallel_tool_calls,
                response_format=self.schema.response_format(),
                **options,
            )
            return self._checked_stream(deltas)
        return self._local_stream(messages, tools, tool_choice, parallel_tool_calls, options)

    # -- a local model: the grammar ---------------------------------------------------------------

    def _decide(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        tool_choice: ToolChoice | None,
        parallel_tool_calls: bool,
        options: dict[str, Any],
    ) -> AssistantTurn | None:
        """With tools on offer, the model's own turn (calls, or a text answer to replace)."""
        self.schema.constraint()  # an inexpressible schema is refused before any generation
        if not tools or (tool_choice is not None and tool_choice.mode == "none"):
            return None
        return self.model.complete(
            messages,
            tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            **options,
        )

    def _generate(
        self,
        model: LocalChat,
        messages: Sequence[Message],
        options: dict[str, Any],
        on_text: Callable[[str], None] | None = None,
    ) -> Generation:
        unknown = sorted(set(options) - set(_ACCEPTED_OPTIONS))
        if unknown:
            raise UserError(
                f"unknown option(s) {unknown}; a schema answer takes {', '.join(_ACCEPTED_OPTIONS)}"
            )
        given = {k: v for k, v in options.items() if k in _ENGINE_OPTIONS}
        sampling = engine_sampling(model.engine, given)
        return model.engine.generate(
            model.render(_with_instruction(messages, self.schema.instruction())),
            max_tokens=given.get("max_tokens", model.max_tokens),
            temperature=given.get("temperature", model.temperature),
            seed=given.get("seed"),
            constraint=self.schema.constraint(),
            on_text=on_text,
            **sampling,
        )

    def _local_stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        tool_choice: ToolChoice | None,
        parallel_tool_calls: bool,
        options: dict[str, Any],
    ) -> Iterator[ChatDelta]:
        decided = self._decide(messages, tools, tool_choice, parallel_tool_calls, options)
        if decided is not None and decided.tool_calls:
            yield from turn_to_deltas(decided)
            return
        model = self.model
        assert isinstance(model, LocalChat)

        def answer(put: Callable[[str, Any], None]) -> Generation:
            return self._generate(model, messages, options, lambda text: put("text", text))

        for kind, value in run_streamed(answer, name="fncall-schema-answer"):
            if kind == "done":
                break
            yield ChatDelta(content=value)
        turn = _answer_turn(value, decided)
        yield ChatDelta(finish_reason=turn.finish_reason, logprobs=turn.logprobs, **usage_of(turn))

    # -- another model: ask, then check ----------------------------------------------------------

    def _checked(self, turn: AssistantTurn) -> AssistantTurn:
        if not turn.tool_calls and turn.finish_reason != "length":
            self.schema.check(turn.content or "")
        return turn

    def _checked_stream(self, deltas: Iterator[ChatDelta]) -> Iterator[ChatDelta]:
        """The deltas are held until the answer is checked: an invalid one is fed back to the
        model, and a client must not have seen it."""
        held = list(deltas)
        self._checked(assemble_turn(held))
        return iter(held)


def _with_instruction(messages: Sequence[Message], instruction: str) -> list[Message]:
    """The conversation with ``instruction`` added to its system message (or a new one)."""
    history = list(messages)
    if history and history[0].role == "system":
        first = history[0]
        content = f"{first.content}\n\n{instruction}" if first.content else instruction
        return [replace(first, content=content), *history[1:]]
    return [Message(role="system", content=instruction), *history]


def _answer_turn(generation: Generation, decided: AssistantTurn | None) -> AssistantTurn:
    """The schema answer as a turn; the tokens of a text answer it replaced are counted too."""
    usage = usage_of(generation)
    if decided is not None:
        for key, value in usage_of(decided).items():
            usage[key] += value  # type: ignore[literal-required]
    turn = AssistantTurn(
        content=generation.text,
        raw=generation.text,
        finish_reason=generation.finish_reason,
        **usage,
    )
    return turn if generation.logprobs is None else replace(turn, logprobs=generation.logprobs)
