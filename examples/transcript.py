"""Ask the model questions through fncall's agent loop and print what happened, call by call.

Shared by the finance monitor and data analysis examples: one question goes through
``fncall.execute.chat`` (the model's calls, their execution, the model's answer) and prints as
``Q:``, one ``call``/``result``/``error`` line per call, ``A:`` and the seconds it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fncall.engine.base import ChatModel
from fncall.execute import ChatResult, chat
from fncall.tools import AbstractToolSet

SHOWN_CHARS = 700  # of a tool result: a table or a summary reads fine, a wall of JSON does not


@dataclass(frozen=True, kw_only=True)
class Exchange:
    question: str
    result: ChatResult
    seconds: float


def ask(
    question: str,
    tools: AbstractToolSet,
    model: ChatModel,
    *,
    system: str | None = None,
    tool_choice: str = "required",
    parallel_tool_calls: bool = False,
    max_steps: int = 3,
) -> Exchange:
    """One question through ``chat``. ``tool_choice="required"`` (the default here) makes the
    first turn a call: every question to these applications is about their data, and the
    default 0.5B model otherwise often writes the call as prose instead of calling. One call a
    turn (``parallel_tool_calls=False``): given the chance, the small model adds calls with
    invented arguments beside the right one. After a result the model may call again or
    answer; the last step answers."""
    messages = [{"role": "user", "content": question}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    began = time.perf_counter()
    result = chat(
        messages,
        tools,
        model=model,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel_tool_calls,
        max_steps=max_steps,
    )
    return Exchange(question=question, result=result, seconds=time.perf_counter() - began)


def format_exchange(exchange: Exchange) -> str:
    result = exchange.result
    lines = [f"Q: {exchange.question}"]
    by_id = {r.call_id: r for r in result.results}
    for call in result.calls:
        arguments = ", ".join(f"{k}={v!r}" for k, v in call.arguments.items())
        lines.append(f"   call   {call.name}({arguments})")
        if call.id in by_id:
            outcome = by_id[call.id]
            text = outcome.render()
            if len(text) > SHOWN_CHARS:
                text = text[:SHOWN_CHARS] + f" ... [{len(text) - SHOWN_CHARS} more chars]"
            label = "result" if outcome.ok else "error "
            lines.append(f"   {label} " + text.replace("\n", "\n          "))
    if not result.calls:
        lines.append("   (no function called)")
    lines.append(f"A: {result.text}")
    lines.append(f"   [{exchange.seconds:.1f} s]")
    return "\n".join(lines)


def run_questions(
    questions: list[str],
    tools: AbstractToolSet,
    model: ChatModel,
    *,
    system: str | None = None,
    tool_choice: str = "required",
    max_steps: int = 3,
    echo: Callable[[str], None] = print,
) -> list[Exchange]:
    exchanges = []
    for question in questions:
        exchange = ask(
            question, tools, model, system=system, tool_choice=tool_choice, max_steps=max_steps
        )
        echo(format_exchange(exchange) + "\n")
        exchanges.append(exchange)
    return exchanges


def load_model(name: str, *, constrained: bool = True, max_tokens: int = 200) -> ChatModel:
    """The catalogue model or GGUF path ``name`` in a LocalChat, as examples/demo.py loads it.

    ``max_tokens`` bounds every turn: a call or a two-sentence answer fits, and a small model
    that starts repeating itself stops within seconds, not after 512 tokens."""
    from fncall.engine import load_engine
    from fncall.pipeline import LocalChat

    began = time.perf_counter()
    engine = load_engine(name)
    model = LocalChat(engine, constrained=constrained, max_tokens=max_tokens)
    print(
        f"model {engine.name}, format {model.format.name}, constrained {model.constrained}; "
        f"loaded in {time.perf_counter() - began:.1f} s"
    )
    return model
