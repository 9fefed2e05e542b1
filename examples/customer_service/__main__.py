"""Customer service on the embedded default model: ``python -m examples.customer_service``.

Seeds the shop database if it is missing (``--data-dir``, default
``$FNCALL_HOME/examples/customer_service``), then answers a few scripted customer questions, or
``--question "..."``, printing every call, result and answer with the time each question took.
A refund needs the customer's confirmation: ``--yes`` gives it, otherwise a terminal prompt
asks, and without a terminal the refund is not confirmed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from examples.customer_service.agent import SHOP, ask, build_agent
from examples.customer_service.db import DB_NAME, default_data_dir, ensure_database, seed_database
from examples.customer_service.tools import SupportDesk
from fncall.execute import AgentEvent, CallsRepeated, ModelTurn, ToolCallsStarted, ToolResultsReady
from fncall.models import DEFAULT_MODEL

QUESTIONS = [
    "Where is my order 1231?",
    "Hi, I'm Priya Wang. What are my recent orders?",
    "Order 1224 arrived broken. Please refund it.",
    "I changed my mind about order 1229, please refund it.",
    "How many days do I have to send back headphones I opened?",
    "Where is my order 9999?",
    "Can you recommend a good book about the history of Rome?",
]
SHOWN_CHARS = 400


def show_event(event: AgentEvent) -> None:
    """Print the transcript as it happens (a confirmation prompt comes between call and
    result)."""
    if isinstance(event, ToolCallsStarted):
        for call in event.calls:
            arguments = ", ".join(f"{k}={v!r}" for k, v in call.arguments.items())
            print(f"   call    {call.name}({arguments})")
    elif isinstance(event, ToolResultsReady):
        for result in event.results:
            text = result.render()
            if len(text) > SHOWN_CHARS:
                text = text[:SHOWN_CHARS] + " ..."
            print(f"   {'result' if result.ok else 'error':<7} {text}")
    elif isinstance(event, CallsRepeated):
        names = ", ".join(call.name for call in event.calls)
        print(f"   (repeated {names}: not run again; the model is asked to answer)")
    elif isinstance(event, ModelTurn) and event.error is not None:
        print(f"   (unusable output, fed back: {event.error})")


def confirmer(always_yes: bool):
    def ask_person(summary: str) -> bool:
        if always_yes:
            print(f"   confirm {summary}? yes (--yes)")
            return True
        if not sys.stdin.isatty():
            print(f"   confirm {summary}? no (no terminal to ask; --yes confirms)")
            return False
        answer = input(f"   confirm {summary}? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    return ask_person


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.customer_service", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--question", help="ask this instead of the scripted questions")
    parser.add_argument("--yes", action="store_true", help="confirm refunds without asking")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"folder of the database (default {default_data_dir()})",
    )
    parser.add_argument("--reseed", action="store_true", help="start from a fresh database")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="catalogue name or path")
    args = parser.parse_args(argv)

    from fncall.engine import load_engine
    from fncall.pipeline import LocalChat

    folder = args.data_dir if args.data_dir is not None else default_data_dir()
    if args.reseed:
        seed_database(folder / DB_NAME)
    db_path = ensure_database(folder)
    started = time.perf_counter()
    model = LocalChat(load_engine(args.model))
    desk = SupportDesk(db_path)
    desk.faq.prepare()
    agent = build_agent(model, desk, ask_person=confirmer(args.yes), on_event=show_event)
    print(
        f"{SHOP} support: model {model.engine.name} and FAQ index loaded in "
        f"{time.perf_counter() - started:.1f} s; database {db_path}"
    )
    print(f"tools: {', '.join(desk.toolset().names)}\n")

    questions = [args.question] if args.question else QUESTIONS
    total = time.perf_counter()
    for question in questions:
        began = time.perf_counter()
        print(f"Q: {question}")
        run = ask(agent, question)
        if not run.tool_calls:
            print("   (no tool called)")
        answer = run.final if run.final is not None else f"(no answer: {run.stop_reason})"
        print(f"A: {answer}")
        print(f"   [{time.perf_counter() - began:.1f} s]\n")
    print(f"{len(questions)} question(s) in {time.perf_counter() - total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
