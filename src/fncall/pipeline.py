"""The local chat pipeline: render -> constrain -> generate -> parse.

``LocalChat(engine)`` is a ``ChatModel`` over any text ``Engine``: it renders the conversation
with the model's own chat template (``fncall.formats.template``), builds (and caches) a grammar
for the offered tools, generates, and parses the text with the chosen tool-call format.

The conversation around it (calls executed, results read, an answer) is
``fncall.execute.conversation``'s loop; ``fncall.chat()`` is its one-call convenience.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fncall.constrain.base import Constraint
from fncall.constrain.build import build_constraint, build_text_constraint
from fncall.constrain.call_count import (
    DEFAULT_COUNT_COVERAGE,
    DEFAULT_COUNT_THRESHOLDS,
    CallCount,
    Coverage,
)
from fncall.constrain.schema import arguments_schema
from fncall.constrain.text_budget import TextBudget
from fncall.engine.base import ChatDelta, ChatModel, Engine, Generation
from fncall.engine.deltas import call_deltas, run_streamed, usage_of
from fncall.errors import ArgumentError, ModelOutputError, SchemaError, UserError
from fncall.formats import get_format
from fncall.formats.auto import auto_answer_with_tools, auto_format
from fncall.formats.base import ToolCallFormat
from fncall.formats.template import render_prompt
from fncall.judge import Judge, ScoringEngine, default_judge, distinct_calls, last_request
from fncall.tools import ToolsInput, as_toolset
from fncall.tools.validation import validate_arguments
from fncall.types import (
    AssistantTurn,
    Message,
    Tool,
    ToolCall,
    ToolChoice,
    as_messages,
)

# The engine's sampling keywords: passed only when asked for, since an Engine written before
# them has no such keyword (``engine_sampling`` refuses what its engine cannot take).
SAMPLING_OPTIONS = (
    "top_p",
    "min_p",
    "logit_bias",
    "presence_penalty",
    "frequency_penalty",
    "top_logprobs",
)
GENERATION_OPTIONS = ("max_tokens", "temperature", "seed", "stop", *SAMPLING_OPTIONS)


@dataclass(frozen=True)
class _Request:
    messages: tuple[Message, ...]
    prompt: str
    tools: tuple[Tool, ...]  # the tools offered under tool_choice
    choice: ToolChoice
    parallel: bool
    constraint: Any
    options: dict[str, Any]


def _count_coverage(value: object, format_name: str) -> tuple[float, float] | None:
    """``LocalChat(count_coverage=...)`` checked: ``"auto"`` resolved, ``(more, fewer)`` kept."""
    if value == "auto":
        return DEFAULT_COUNT_COVERAGE.get(format_name)
    if value is None:
        return None
    if isinstance(value, tuple | list) and len(value) == 2:
        more, fewer = value
        Coverage((), more, fewer)  # checks both amounts
        return (float(more), float(fewer))
    raise UserError(
        f"count_coverage must be 'auto', None or (more, fewer), two log-odds >= 0; got {value!r}"
    )


class LocalChat(ChatModel):
    """A ``ChatModel`` over a local ``Engine``.

    ``format``: a registered format name, a format object, or ``"auto"`` (the model's best, see
    ``fncall.formats.auto``). ``constrained``: decode under a grammar built from the offered tools
    (``fncall.constrain``); without it the output is parsed tolerantly and an unusable call
    raises ``ModelOutputError``. ``text_max_tokens``: with constraints under
    ``tool_choice="auto"``, a plain-text answer stops after this many tokens (calls keep
    ``max_tokens``); for when only the call-or-not decision matters, e.g. evaluation.

    ``judge``: under ``tool_choice="auto"``, a turn with calls is checked against the user's
    request before it is returned (``fncall.judge``: grounding of its values, and a yes/no
    question per called function); a turn that does not fit is answered in text instead.
    ``"auto"`` (the default) uses the model's ``fncall.judge.default_judge`` when the engine can
    score text (``Engine.score``: the llama.cpp and transformers engines), a ``Judge`` sets its
    own settings, ``None`` turns the step off.

    ``count_threshold``: how many calls a list gets (``fncall.constrain.call_count``): after
    each call the list goes on when the model's log-odds of another call over the list's end
    reach this value. ``None`` leaves it to greedy decoding (close to 0); lower values make more
    calls; ``"auto"`` (the default) takes the format's setting chosen on generated data
    (``fncall.constrain.call_count.DEFAULT_COUNT_THRESHOLDS``). ``count_coverage``: with a
    threshold, ``(more, fewer)`` lets the user's values move it (``Coverage``: ``more`` easier
    to go on while a value the request names is unused, ``fewer`` harder once all are used);
    ``None`` turns it off, ``"auto"`` takes the format's setting (``DEFAULT_COUNT_COVERAGE``).

    ``answer_with_tools``: under ``tool_choice="none"`` (the answer turn after tool results in
    ``fncall.chat``, ``Agent`` and the server's loop), ``True`` keeps the tools in the prompt and
    lets the grammar admit text only, so the prompt extends the calling turn's and its KV cache
    is reused; ``False`` renders the turn without tools. ``"auto"`` (the default) takes the
    model's setting (``fncall.formats.auto.ANSWERS_WITH_TOOLS``). Needs ``constrained``.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        format: str | ToolCallFormat = "auto",
        constrained: bool = True,
        max_tokens: int = 512,
        temperature: float = 0.0,
        text_max_tokens: int | None = None,
        judge: Judge | str | None = "auto",
        count_threshold: float | str | None = "auto",
        count_coverage: tuple[float, float] | str | None = "auto",
        answer_with_tools: bool | str = "auto",
    ) -> None:
        if not isinstance(engine, Engine):
            raise UserError(
                "engine must be an Engine (name, generate, chat_template, vocabulary), "
                f"got {engine!r}"
            )
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise UserError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        if not isinstance(temperature, int | float) or temperature < 0:
            raise UserError(f"temperature must be a number >= 0, got {temperature!r}")
        if text_max_tokens is not None and (
            isinstance(text_max_tokens, bool)
            or not isinstance(text_max_tokens, int)
            or text_max_tokens < 1
        ):
            raise UserError(
                f"text_max_tokens must be a positive integer or None, got {text_max_tokens!r}"
            )
        if judge == "auto":
            judge = default_judge(engine.name) if isinstance(engine, ScoringEngine) else None
        elif judge is not None and not isinstance(judge, Judge):
            raise UserError(f"judge must be 'auto', a fncall.judge.Judge or None, got {judge!r}")
        elif judge is not None and not isinstance(engine, ScoringEngine):
            raise UserError(
                f"judge needs an engine that can score text (Engine.score); {engine!r} cannot: "
                "pass judge=None"
            )
        self.judge: Judge | None = judge
        self.engine = engine
        if format == "auto":
            format = auto_format(engine.name, engine.chat_template)
        self.format: ToolCallFormat = get_format(format)
        if count_threshold == "auto":
            count_threshold = DEFAULT_COUNT_THRESHOLDS.get(self.format.name)
        elif count_threshold is not None and (
            isinstance(count_threshold, bool)
            or not isinstance(count_threshold, int | float)
            or math.isnan(count_threshold)
        ):
            raise UserError(
                f"count_threshold must be 'auto', a number or None, got {count_threshold!r}"
            )
        self.count_threshold: float | None = count_threshold
        self.count_coverage = _count_coverage(count_coverage, self.format.name)
        if answer_with_tools == "auto":
            answer_with_tools = auto_answer_with_tools(engine.name)
        elif not isinstance(answer_with_tools, bool):
            raise UserError(
                f"answer_with_tools must be 'auto', True or False, got {answer_with_tools!r}"
            )
        self.answer_with_tools = answer_with_tools and constrained
        self.constrained = constrained
        self.max_tokens = max_tokens
        self.temperature = float(temperature)
        self.text_max_tokens = text_max_tokens

    def __repr__(self) -> str:
        return (
            f"LocalChat({self.engine.name!r}, "
            f"format={self.format.name!r}, constrained={self.constrained}, judge={self.judge})"
        )

    # -- the pipeline ---------------------------------------------------------------------------

    def render(
        self,
        messages: str | Sequence[Message | Mapping[str, Any]],
        tools: ToolsInput = (),
        *,
        tool_choice: ToolChoice | str | Mapping[str, Any] | None = None,
    ) -> str:
        """The exact prompt the engine would receive (for debugging and evaluation)."""
        tool_list = as_toolset(tools).tools
        choice = ToolChoice.parse(tool_choice, [t.name for t in tool_list])
        return render_prompt(
            self.engine.chat_template, messages, self._listed(tool_list, choice), format=self.format
        )

    def _listed(self, tools: Sequence[Tool], choice: ToolChoice) -> list[Tool]:
        """The tools the prompt shows: those the model may call, or under ``tool_choice="none"``
        with ``answer_with_tools`` all of them (the grammar then admits text only)."""
        if choice.mode == "none" and self.answer_with_tools:
            return list(tools)
        return choice.selected(tools)

    def _prepare(
        self,
        messages: str | Sequence[Message | Mapping[str, Any]],
        tools: ToolsInput,
        tool_choice: ToolChoice | str | Mapping[str, Any] | None,
        parallel_tool_calls: bool,
        options: dict[str, Any],
    ) -> _Request:
        unknown = sorted(set(options) - set(GENERATION_OPTIONS))
        if unknown:
            raise UserError(
                f"unknown option(s) {unknown}; LocalChat accepts {', '.join(GENERATION_OPTIONS)}"
            )
        tool_list = as_toolset(tools).tools
        choice = ToolChoice.parse(tool_choice, [t.name for t in tool_list])
        selected = tuple(choice.selected(tool_list))
        if choice.mode == "required" and not selected:
            raise UserError("tool_choice 'required' needs at least one tool, but none was given")
        history = tuple(as_messages(messages))
        listed = self._listed(tool_list, choice)
        prompt = render_prompt(self.engine.chat_template, history, listed, format=self.format)
        constraint: Any = None
        if listed and not selected:  # tools shown, none callable: text only
            constraint = build_text_constraint(self.format)
        elif self.constrained and selected:
            constraint = self._constraint(selected, choice, parallel_tool_calls)
            if self.count_threshold is not None and parallel_tool_calls:
                constraint = CallCount(
                    constraint, self.count_threshold, self._coverage(history, selected)
                )
            if self.text_max_tokens and choice.mode == "auto":
                constraint = TextBudget(constraint, self.text_max_tokens)
        return _Request(history, prompt, selected, choice, parallel_tool_calls, constraint, options)

    def _coverage(self, history: tuple[Message, ...], tools: tuple[Tool, ...]) -> Coverage | None:
        """The count's coverage for a turn that answers the user (not one after tool results:
        their values are the results', and answering is the loop's business)."""
        if self.count_coverage is None or not history or history[-1].role != "user":
            return None
        request = history[-1].content
        if not isinstance(request, str):
            return None
        known = "\n".join(f"{tool.name} {tool.description}" for tool in tools)
        more, fewer = self.count_coverage
        return Coverage.of(request, known, more=more, fewer=fewer)

    def _constraint(self, tools: tuple[Tool, ...], choice: ToolChoice, parallel: bool) -> Any:
        """The grammar for this tool set and choice, in this format's syntax. Compiled once:
        ``build_constraint``'s bounded cache is the one grammar cache."""
        return build_constraint(
            list(tools), tool_choice=choice, parallel_tool_calls=parallel, syntax=self.format
        )

    def _generate(
        self,
        request: _Request,
        on_text: Any = None,
        max_tokens: int | None = None,
        logprobs: bool = False,
    ) -> Generation:
        """``logprobs``: record each token's log-probability even when the request did not ask
        (the judge's ``confidence``), where the engine can."""
        stop = request.options.get("stop") or ()
        sampling = engine_sampling(self.engine, request.options)
        if logprobs and "top_logprobs" not in sampling and _takes(self.engine, "top_logprobs"):
            sampling["top_logprobs"] = 0
        return self.engine.generate(
            request.prompt,
            max_tokens=max_tokens or request.options.get("max_tokens", self.max_tokens),
            temperature=request.options.get("temperature", self.temperature),
            stop=[stop] if isinstance(stop, str) else list(stop),
            seed=request.options.get("seed"),
            constraint=request.constraint,
            on_text=on_text,
            **sampling,
        )

    def _turn(self, request: _Request, generation: Generation) -> AssistantTurn:
        turn = self._parse_turn(request, generation)
        if generation.logprobs is not None:
            turn = replace(turn, logprobs=generation.logprobs)
        return turn

    def _parse_turn(self, request: _Request, generation: Generation) -> AssistantTurn:
        text = generation.text
        constraint: Constraint | None = request.constraint
        # Text when no tool was offered, or when the grammar let the model answer in text (then
        # it is text, whatever it quotes: never mined for calls).
        answered_in_text = (
            constraint is not None
            and request.choice.mode == "auto"
            and not constraint.syntax.took_call_branch(text)
        )
        bare = bare_calls(text, request.tools, self.format) if answered_in_text else ()
        if len(bare) > 1 and not request.parallel:
            bare = ()
        if bare:
            return AssistantTurn(
                tool_calls=bare, raw=text, finish_reason="tool_calls", **usage_of(generation)
            )
        if not request.tools or answered_in_text:
            finish = generation.finish_reason
            budget = request.constraint
            if isinstance(budget, TextBudget) and generation.completion_tokens >= budget.max_tokens:
                finish = "length"  # the text budget ended it
            return AssistantTurn(
                content=text.strip() or None,
                raw=text,
                finish_reason=finish,
                **usage_of(generation),
            )
        turn = self.format.parse(text)
        calls = distinct_calls(turn.tool_calls)
        if request.choice.mode == "required" and not calls:
            raise ModelOutputError(
                "tool_choice requires a call, but the model answered in text", raw=text
            )
        finish = "tool_calls" if calls else generation.finish_reason
        return AssistantTurn(
            content=turn.content,
            tool_calls=calls,
            raw=text,
            finish_reason=finish,
            **usage_of(generation),
        )

    def _respond(
        self,
        request: _Request,
        on_text: Callable[[str], None] | None = None,
        on_answer: Callable[[str], None] | None = None,
    ) -> AssistantTurn:
        """Draft the turn, let the judge review its calls, and answer in text if none is left."""
        judge = self.judge if request.choice.mode == "auto" else None
        confident = judge is not None and judge.wants_confidence(request.messages)
        generation = self._generate(request, on_text, logprobs=confident)
        confidence = None
        if confident and generation.logprobs:
            confidence = math.exp(generation.logprobs[0].logprob)
            if "top_logprobs" not in request.options:  # recorded for the judge only
                generation = replace(generation, logprobs=None)
        turn = self._turn(request, generation)
        asked = last_request(request.messages)
        if judge is None or not turn.tool_calls or asked is None:
            return turn
        decision = judge.decide(
            self.engine,  # type: ignore[arg-type]  # checked in __init__
            self.engine.chat_template,
            asked[0],
            turn.tool_calls,
            request.tools,
            context=asked[1],
            history=request.messages,
            confidence=confidence,
        )
        if decision.kept:
            return replace(turn, tool_calls=decision.calls, decision=decision)
        # No called function fits: answer the conversation in text, without the tools in the prompt.
        answer = replace(
            request,
            prompt=render_prompt(
                self.engine.chat_template, request.messages, (), format=self.format
            ),
            tools=(),
            constraint=None,
        )
        generation = self._generate(answer, on_answer, max_tokens=self.text_max_tokens)
        text = self._turn(answer, generation)
        return replace(
            text,
            decision=decision,
            prompt_tokens=turn.prompt_tokens + text.prompt_tokens,
            completion_tokens=turn.completion_tokens + text.completion_tokens,
            cached_tokens=turn.cached_tokens + text.cached_tokens,
        )

    # -- ChatModel ------------------------------------------------------------------------------

    def complete(
        self,
        messages: str | Sequence[Message | Mapping[str, Any]],
        tools: ToolsInput = (),
        *,
        tool_choice: ToolChoice | str | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool = True,
        **options: Any,
    ) -> AssistantTurn:
        request = self._prepare(messages, tools, tool_choice, parallel_tool_calls, options)
        return self._respond(request)

    def stream(
        self,
        messages: str | Sequence[Message | Mapping[str, Any]],
        tools: ToolsInput = (),
        *,
        tool_choice: ToolChoice | str | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool = True,
        **options: Any,
    ) -> Iterator[ChatDelta]:
        """Content deltas while the model writes free text; each call as one header delta
        (index, id, name) and one arguments delta holding its complete JSON arguments."""
        request = self._prepare(messages, tools, tool_choice, parallel_tool_calls, options)
        return self._stream(request)

    def _stream(self, request: _Request) -> Iterator[ChatDelta]:
        def respond(put: Callable[[str, Any], None]) -> AssistantTurn:
            return self._respond(
                request, lambda text: put("text", text), lambda text: put("answer", text)
            )

        markers = self.format.call_markers if request.tools else ()
        # a text answer may still turn out to be a bare call (``bare_calls``): its start is held
        splitter = _ContentSplitter(markers, leading=[f"{tool.name}(" for tool in request.tools])
        answered = False  # the judge dropped every call: the text answer streams as it comes
        for kind, value in run_streamed(respond, name="fncall-generate"):
            if kind == "done":
                break
            if kind == "answer":
                answered = True
                yield ChatDelta(content=value)
                continue
            piece = splitter.feed(value)
            if piece:
                yield ChatDelta(content=piece)
        turn: AssistantTurn = value
        if not turn.tool_calls:
            rest = "" if answered else turn.raw[len(splitter.emitted) :]
            if rest:
                yield ChatDelta(content=rest)
            yield ChatDelta(
                finish_reason=turn.finish_reason, logprobs=turn.logprobs, **usage_of(turn)
            )
            return
        # Prose after the calls (rare under a grammar) follows once the calls are known.
        shown = splitter.emitted.strip()
        if turn.content and turn.content.startswith(shown) and turn.content != shown:
            yield ChatDelta(content=turn.content[len(shown) :])
        yield from call_deltas(turn.tool_calls)
        yield ChatDelta(finish_reason="tool_calls", **usage_of(turn))


def engine_sampling(engine: Engine, options: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling keywords of ``options`` for ``engine.generate``; a ``UserError`` naming the
    first one the engine's ``generate`` does not take (rather than a ``TypeError``)."""
    sampling = {name: options[name] for name in SAMPLING_OPTIONS if name in options}
    for name in sampling:
        if not _takes(engine, name):
            raise UserError(
                f"{name}: the engine {engine.name!r} does not support it (its generate "
                "has no such keyword); accepted: leave it out"
            )
    return sampling


def _takes(engine: Engine, keyword: str) -> bool:
    """Whether ``engine.generate`` accepts ``keyword``."""
    parameters = inspect.signature(engine.generate).parameters
    return keyword in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def bare_calls(text: str, tools: Sequence[Tool], syntax: ToolCallFormat) -> tuple[ToolCall, ...]:
    """The calls of a text answer that is nothing but calls of offered functions, written without
    the format's opening (``get_weather(city="Paris")`` where the list ``[...]`` was due), with
    arguments the function's schema accepts as they are; otherwise none.

    The grammar decides text or call on the first characters, and a bare call begins like prose:
    the default model, asked "What's the weather like in Paris right now?", answered exactly
    that. Text that says anything besides the calls stays text, and so does a call the grammar
    would not have allowed (an unknown function, a value its schema refuses)."""
    # A format may read more into a bare call than its parser does on its own (pythonic binds
    # positional arguments in the order its tool stubs show); an optional method, so formats
    # from plugins need not have it.
    parse_bare = getattr(syntax, "parse_bare", None)
    if parse_bare is not None:
        calls = parse_bare(text, tools)
    else:
        try:
            turn = syntax.parse(text)
        except ModelOutputError:
            return ()
        calls = None if turn.content else turn.tool_calls
    if not calls:
        return ()
    offered = {tool.name: tool for tool in tools}
    for call in calls:
        tool = offered.get(call.name)
        if tool is None:
            return ()
        grammar_tool = replace(tool, parameters=arguments_schema(tool.parameters))
        try:
            validate_arguments(grammar_tool, call.arguments, coerce=False)
        except (ArgumentError, SchemaError):
            return ()
    return distinct_calls(calls)


class _ContentSplitter:
    """Passes text through as content until something that may start a call appears.

    A tail that could be the beginning of a marker is held back until it is decided, and so is
    a start that could be one of ``leading`` (a marker that counts only at the very start).
    """

    def __init__(self, markers: Sequence[str], leading: Sequence[str] = ()) -> None:
        self.markers = tuple(markers)
        self.leading = tuple(leading)
        self.text = ""
        self.emitted = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        self.text += piece
        if self.stopped:
            return ""
        if not self.emitted and self.leading:
            head = self.text.lstrip()
            if any(head.startswith(marker) for marker in self.leading):
                self.stopped = True  # decided once the turn is parsed
                return ""
            if any(marker.startswith(head) for marker in self.leading):
                return ""
        safe = len(self.text)
        for marker in self.markers:
            found = self.text.find(marker, len(self.emitted))
            if found >= 0:
                self.stopped = True
                safe = min(safe, found)
                continue
            for size in range(min(len(marker) - 1, len(self.text)), 0, -1):
                if self.text.endswith(marker[:size]):
                    safe = min(safe, len(self.text) - size)
                    break
        out = self.text[len(self.emitted) : safe]
        self.emitted += out
        return out
