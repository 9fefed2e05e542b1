"""Generate function-calling training data from a function library.

For each example a kind is drawn (``simple``: one tool, one call; ``multiple``: several tools,
one call; ``parallel``: one function called 2-3 times; ``parallel_multiple``: several functions;
``irrelevance``: no tool fits, answer in text: an off-topic question, a question for a function
that is not offered, or, hardest, a question in an offered function's own domain that it cannot
answer, from the library's ``NEAR_MISS_QUESTIONS``). Arguments are drawn from each schema (enums,
numbers within ``minimum``/``maximum``, plausible strings chosen by parameter name).

Function masking (Hammer): with probability ``masking_probability`` a function's name and its
parameter names are replaced by random identifiers, so the model must read descriptions rather
than memorise names; tool lists are shuffled and padded with distractor tools.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fncall.errors import UserError
from fncall.train.data import TrainingExample
from fncall.train.library import (
    BUILTIN_LIBRARY,
    NEAR_MISS_QUESTIONS,
    OFF_TOPIC_QUESTIONS,
    LibraryFunction,
)
from fncall.types import Message, Tool, ToolCall

KINDS = ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance")
DEFAULT_MIX: dict[str, float] = {
    "simple": 0.3,
    "multiple": 0.25,
    "parallel": 0.15,
    "parallel_multiple": 0.1,
    "irrelevance": 0.2,
}
NO_CALL_REPLIES = (
    "None of the available functions can help with this request.",
    "I can't do that with the tools I have; none of them fits this request.",
    "The provided functions don't cover this, so I won't call any of them.",
)
_GENERIC_TEMPLATES = (
    "Please {action}. {args}",
    "I need you to {action}. Use {args}",
    "Can you {action}? {args}",
    "{args} With that, {action}.",
)
_JOINERS = (" Also, ", " And then ", " Next, ", " In addition, ")

_STRINGS: dict[str, tuple[str, ...]] = {
    "city": (
        "Lisbon",
        "Nairobi",
        "Osaka",
        "Vancouver",
        "Krakow",
        "Montevideo",
        "Hanoi",
        "Tromso",
        "Porto Alegre",
        "Adelaide",
        "Ghent",
        "Valparaiso",
        "Chiang Mai",
        "Tbilisi",
    ),
    "country": (
        "Portugal",
        "Kenya",
        "Japan",
        "Canada",
        "Poland",
        "Uruguay",
        "Vietnam",
        "Norway",
        "Chile",
        "Georgia",
        "Belgium",
        "Ghana",
    ),
    "date": ("2025-03-14", "2025-07-02", "2024-11-20", "2025-01-09", "2025-09-30", "2024-12-24"),
    "time": ("07:30", "09:15", "12:00", "14:45", "18:20", "21:05"),
    "path": (
        "reports/q3.txt",
        "notes/ideas.md",
        "src/app.py",
        "data/sales.csv",
        "photos/cat.png",
        "docs",
        "projects/website",
        "logs/server.log",
    ),
    "url": (
        "https://example.org/blog/spring-update",
        "https://shop.example.com/items/4821",
        "https://status.example.net",
        "https://docs.example.io/start",
    ),
    "email": ("maria@example.com", "dev-team@example.org", "k.osei@example.net", "lee@example.com"),
    "ticker": ("ACME", "GLOBX", "NORTH", "ZENTA", "QUILL", "ORBIT"),
    "order": ("ORD-48213", "ORD-10077", "ORD-99120", "ORD-56034"),
    "word": ("serendipity", "ephemeral", "quixotic", "laconic", "ubiquitous", "petrichor"),
    "title": ("Team sync", "Dentist appointment", "Project kickoff", "Yoga class", "Budget review"),
    "text": (
        "good morning, how are you",
        "the meeting moved to Friday",
        "thank you for the flowers",
        "where is the train station",
        "the invoice is attached",
    ),
    "query": (
        "jazz",
        "Beethoven",
        "lo-fi beats",
        "SELECT name FROM users WHERE active = 1",
        "quarterly revenue",
        "TODO",
    ),
    "dish": ("ramen", "shakshuka", "lasagna", "pad thai", "banana bread", "falafel"),
    "name": ("Amara", "Jonas", "Priya", "Mateo", "Yuki", "Olga"),
    "generic": ("alpha", "blue", "north wing", "version 2", "standard", "sample"),
}
_STRING_KEYS = (  # first match wins: "start_time" is a time, not a place
    ("time", "time"),
    ("date", "date"),
    ("email", "email"),
    ("to", "email"),
    ("url", "url"),
    ("link", "url"),
    ("city", "city"),
    ("origin", "city"),
    ("destination", "city"),
    ("start", "city"),
    ("end", "city"),
    ("country", "country"),
    ("date", "date"),
    ("check_in", "date"),
    ("time", "time"),
    ("path", "path"),
    ("file", "path"),
    ("folder", "path"),
    ("ticker", "ticker"),
    ("order", "order"),
    ("word", "word"),
    ("title", "title"),
    ("subject", "title"),
    ("message", "text"),
    ("text", "text"),
    ("body", "text"),
    ("task", "title"),
    ("query", "query"),
    ("pattern", "query"),
    ("dish", "dish"),
    ("name", "name"),
)


def sample_value(name: str, schema: Mapping[str, Any], rng: random.Random) -> Any:
    """A plausible value for one parameter, drawn from its schema (and its name for strings)."""
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    kind = schema.get("type", "string")
    if kind == "integer":
        low, high = int(schema.get("minimum", 1)), int(schema.get("maximum", 100))
        return rng.randint(low, high)
    if kind == "number":
        low_f, high_f = float(schema.get("minimum", 1)), float(schema.get("maximum", 1000))
        drawn = rng.uniform(low_f, high_f)
        return round(drawn) if rng.random() < 0.5 else round(drawn, 1)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        items = schema.get("items") or {"type": "number"}
        sub = dict(items)
        sub.setdefault("minimum", 1)
        sub.setdefault("maximum", 99)
        return [sample_value(name, sub, rng) for _ in range(rng.randint(3, 5))]
    lowered = name.lower()
    pool = next(
        (_STRINGS[key] for part, key in _STRING_KEYS if part in lowered), _STRINGS["generic"]
    )
    return rng.choice(pool)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    return str(value)


def _fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


@dataclass(frozen=True, kw_only=True)
class _Entry:
    tool: Tool
    questions: tuple[str, ...] = ()


def _generic_question(tool: Tool, rng: random.Random) -> tuple[str, dict[str, Any]]:
    """Questions for a tool without templates: its description as the request, arguments named
    by their descriptions."""
    props: Mapping[str, Any] = tool.parameters.get("properties") or {}
    required = list(tool.parameters.get("required") or [])
    chosen = [p for p in props if p in required or rng.random() < 0.4]
    arguments = {p: sample_value(p, props[p], rng) for p in chosen}
    action = (tool.description or tool.name.replace("_", " ")).strip().rstrip(".")
    action = action[:1].lower() + action[1:]
    parts = []
    for p in chosen:
        label = str(props[p].get("description") or p.replace("_", " ")).rstrip(".")
        parts.append(f"{label[:1].lower() + label[1:]}: {_show(arguments[p])}")
    args = "; ".join(parts) + "." if parts else ""
    return rng.choice(_GENERIC_TEMPLATES).format(action=action, args=args).strip(), arguments


def _question(entry: _Entry, rng: random.Random) -> tuple[str, ToolCall]:
    props: Mapping[str, Any] = entry.tool.parameters.get("properties") or {}
    if not entry.questions:
        text, arguments = _generic_question(entry.tool, rng)
        return text, ToolCall(name=entry.tool.name, arguments=arguments)
    template = rng.choice(entry.questions)
    names = _fields(template)
    arguments = {n: sample_value(n, props.get(n, {}), rng) for n in names}
    text = template.format(**{n: _show(v) for n, v in arguments.items()})
    return text, ToolCall(name=entry.tool.name, arguments=arguments)


def _random_identifier(rng: random.Random) -> str:
    letters = string.ascii_lowercase
    return rng.choice(letters) + "".join(rng.choice(letters + string.digits) for _ in range(7))


def mask_example(
    example: TrainingExample, rng: random.Random, probability: float
) -> TrainingExample:
    """Rename each tool (and its parameters) with ``probability``; rewrite gold calls to match."""
    tool_names: dict[str, str] = {}
    param_names: dict[str, dict[str, str]] = {}
    tools = []
    for tool in example.tools:
        if rng.random() >= probability:
            tools.append(tool)
            continue
        new_name = _random_identifier(rng)
        props: Mapping[str, Any] = tool.parameters.get("properties") or {}
        mapping = {p: _random_identifier(rng) for p in props}
        schema = dict(tool.parameters)
        schema["properties"] = {mapping[p]: v for p, v in props.items()}
        schema["required"] = [mapping.get(p, p) for p in tool.parameters.get("required") or []]
        tools.append(replace(tool, name=new_name, parameters=schema))
        tool_names[tool.name] = new_name
        param_names[tool.name] = mapping
    messages = []
    for message in example.messages:
        if message.tool_calls:
            calls = tuple(
                ToolCall(
                    name=tool_names.get(c.name, c.name),
                    arguments={
                        param_names.get(c.name, {}).get(k, k): v for k, v in c.arguments.items()
                    },
                    id=c.id,
                )
                for c in message.tool_calls
            )
            message = replace(message, tool_calls=calls)
        messages.append(message)
    return replace(example, messages=tuple(messages), tools=tuple(tools))


@dataclass(kw_only=True)
class Generator:
    """Draws training examples from a function library; deterministic for a given ``seed``."""

    library: Sequence[LibraryFunction | Tool] = field(default_factory=lambda: list(BUILTIN_LIBRARY))
    seed: int = 0
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    masking_probability: float = 2 / 3
    max_distractors: int = 4
    system_prompt: str | None = None

    def __post_init__(self) -> None:
        self.entries = [
            _Entry(tool=item.tool, questions=item.questions)
            if isinstance(item, LibraryFunction)
            else _Entry(tool=item)
            for item in self.library
        ]
        if len(self.entries) < 2:
            raise UserError("generating training data needs a function library of at least 2 tools")
        unknown = sorted(set(self.mix) - set(KINDS))
        if unknown or not any(v > 0 for v in self.mix.values()):
            raise UserError(
                f"mix must give positive weights to some of {', '.join(KINDS)}; "
                f"got {dict(self.mix)}"
            )
        self.rng = random.Random(self.seed)

    def _distractors(self, exclude: Sequence[_Entry], count: int) -> list[Tool]:
        words = {w for e in exclude for w in e.tool.name.split("_") if len(w) > 3}
        pool = [
            e.tool
            for e in self.entries
            if e not in exclude and not words & {w for w in e.tool.name.split("_") if len(w) > 3}
        ]
        return self.rng.sample(pool, min(count, len(pool)))

    def _example(self, kind: str) -> TrainingExample:
        rng = self.rng
        picks = rng.sample(self.entries, rng.randint(2, 3) if kind == "parallel_multiple" else 1)
        if kind == "parallel":
            asked = [_question(picks[0], rng) for _ in range(rng.randint(2, 3))]
        else:
            asked = [_question(entry, rng) for entry in picks]
        question = asked[0][0]
        for text, _ in asked[1:]:
            question += rng.choice(_JOINERS) + text[:1].lower() + text[1:]
        if kind == "irrelevance":
            tools = self._distractors(picks, rng.randint(1, self.max_distractors + 1))
            near = NEAR_MISS_QUESTIONS.get(picks[0].tool.name)
            roll = rng.random()
            if near and roll < 1 / 3:  # hard negative: its own tool is offered but cannot answer
                question = rng.choice(near)
                tools = [picks[0].tool, *tools[: self.max_distractors]]
            elif roll < 2 / 3:
                question = rng.choice(OFF_TOPIC_QUESTIONS)
            reply = Message(role="assistant", content=rng.choice(NO_CALL_REPLIES))
        else:
            extra = (
                0
                if kind == "simple"
                else rng.randint(min(1, self.max_distractors), self.max_distractors)
            )
            tools = [e.tool for e in picks] + self._distractors(picks, extra)
            reply = Message(role="assistant", tool_calls=tuple(call for _, call in asked))
        rng.shuffle(tools)
        messages = [Message(role="user", content=question), reply]
        if self.system_prompt:
            messages.insert(0, Message(role="system", content=self.system_prompt))
        example = TrainingExample(
            messages=tuple(messages), tools=tuple(tools), source=f"generated:{kind}"
        )
        return mask_example(example, rng, self.masking_probability)

    def generate(self, count: int) -> list[TrainingExample]:
        kinds = [k for k in KINDS if self.mix.get(k, 0) > 0]
        weights = [self.mix[k] for k in kinds]
        return [self._example(self.rng.choices(kinds, weights)[0]) for _ in range(count)]


def generate_examples(
    count: int,
    library: Sequence[LibraryFunction | Tool] | None = None,
    *,
    seed: int = 0,
    **options: Any,
) -> list[TrainingExample]:
    """``count`` examples from ``library`` (default: the built-in one)."""
    generator = Generator(library=list(library or BUILTIN_LIBRARY), seed=seed, **options)
    return generator.generate(count)
