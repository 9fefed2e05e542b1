"""A second look before a call leaves the model: can the called function do what was asked?

Writing a call and judging one are different tasks, and a small model is better at the second.
Under ``tool_choice="auto"`` the model drafts its turn as usual; then, for each distinct function
it called, ``Judge`` asks the same model a short yes/no question in a prompt of its own (no
tools, a few fixed examples from domains outside any library; their KV cache is shared by every
question): *a user asked this; the function is described so; can it do what the user asked?*
The score is the log-odds of "yes" over "no" for the first answer token (``Engine.score``). Calls
to functions scoring below ``threshold`` are dropped; when none is left, the turn is answered in
text instead (``fncall.pipeline.LocalChat``).

The threshold was chosen on generated data only (the built-in function library with its hard
negatives, ``benchmarks/bench_decision.py``), never on BFCL. ``Judge(threshold=...)`` moves the
trade-off between calling and abstaining; ``LocalChat(judge=None)`` turns the step off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from fncall.errors import UserError
from fncall.formats.template import render_prompt
from fncall.types import Message, Tool, ToolCall

# Chosen on generated development data (bench_decision.py): see the README's decision table.
DEFAULT_THRESHOLD = 0.6

# (request, function name, description, answer): domains no built-in tool covers, so the
# examples teach the task, not answers; the third is a near miss (right domain, cannot answer).
EXAMPLES: tuple[tuple[str, str, str, str], ...] = (
    (
        "Reserve a campsite by the lake for Saturday.",
        "get_tide_times",
        "Return the high and low tide times for a coastal town on a given date.",
        "No",
    ),
    (
        "When is high tide in Brighton tomorrow?",
        "get_tide_times",
        "Return the high and low tide times for a coastal town on a given date.",
        "Yes",
    ),
    (
        "What will the water temperature be at Brighton beach tomorrow?",
        "get_tide_times",
        "Return the high and low tide times for a coastal town on a given date.",
        "No",
    ),
    (
        "Which book has the ISBN 978-0-13-468599-1?",
        "lookup_isbn",
        "Find a book's title, author and publisher from its ISBN.",
        "Yes",
    ),
    (
        "How tall is the Eiffel Tower?",
        "lookup_isbn",
        "Find a book's title, author and publisher from its ISBN.",
        "No",
    ),
)
YES, NO = ("yes", "Yes"), ("no", "No")


@runtime_checkable
class ScoringEngine(Protocol):
    """An engine that can score continuations (``LlamaCppEngine``, ``TransformersEngine``)."""

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]: ...


@dataclass(frozen=True)
class Verdict:
    """The judge's score for one call (log-odds yes vs no) and whether the call is kept."""

    call: ToolCall
    score: float
    kept: bool


def _question(request: str, tool: Tool) -> str:
    description = " ".join((tool.description or "(no description)").split())
    return (
        f'A user asked: "{request}"\n'
        f'The function `{tool.name}` is described as: "{description}"\n'
        "Can this function do what the user asked? Answer yes or no."
    )


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def last_request(messages: Sequence[Message]) -> str | None:
    """The text of the last message when it is the user's (the request a first turn answers);
    None after tool results or an assistant turn, where the judge does not apply."""
    if not messages or messages[-1].role != "user":
        return None
    content: Any = messages[-1].content
    if isinstance(content, str):
        return content.strip() or None
    return None


@dataclass(frozen=True)
class Judge:
    """Scores each called function against the request; see the module docstring."""

    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise UserError(f"the judge's threshold must be a number, got {self.threshold!r}")
        if math.isnan(self.threshold):
            raise UserError("the judge's threshold must be a number, got NaN")

    def prompt(self, chat_template: str | None, request: str, tool: Tool) -> str:
        """The judge's prompt for one function: the fixed examples, then the question."""
        messages: list[Message] = []
        for asked, name, description, answer in EXAMPLES:
            example = Tool(name=name, description=description)
            messages.append(Message(role="user", content=_question(asked, example)))
            messages.append(Message(role="assistant", content=answer))
        messages.append(Message(role="user", content=_question(request, tool)))
        return render_prompt(chat_template, messages, [], format="json")  # no tools: any format

    def score(
        self, engine: ScoringEngine, chat_template: str | None, request: str, tool: Tool
    ) -> float:
        """Log-odds of "yes" over "no" as the first answer token."""
        scores = engine.score(self.prompt(chat_template, request, tool), [*YES, *NO])
        return _logsumexp(scores[: len(YES)]) - _logsumexp(scores[len(YES) :])

    def review(
        self,
        engine: ScoringEngine,
        chat_template: str | None,
        request: str,
        calls: Sequence[ToolCall],
        tools: Sequence[Tool],
    ) -> list[Verdict]:
        """One verdict per call (each distinct function is scored once)."""
        offered = {tool.name: tool for tool in tools}
        scores: dict[str, float] = {}
        for call in calls:
            if call.name not in scores and call.name in offered:
                scores[call.name] = self.score(engine, chat_template, request, offered[call.name])
        verdicts = []
        for call in calls:
            score = scores.get(call.name, -math.inf)  # a function not offered is never kept
            verdicts.append(Verdict(call, score, score >= self.threshold))
        return verdicts
