"""The answer turn after tool results: tools hidden (rendered without them) or listed (the calling
turn's prompt extended, a grammar admitting text only). Same cases, one run, per model.

Development data only: the demo's four tool questions (the model's own calls, run by the
executor) and conversations generated from the built-in library (``bench_followup``'s cases),
whose every result carries its own random number, so an answer that reports the result can be
told from one that does not. For each case the calling turn is asked first (its KV cache is live,
as in an agent loop), then the answer turn one way; then both again the other way. Recorded per
answer: seconds, prompt tokens that had to be evaluated (not cached), whether it mentions every
result's number ("uses the results"), whether it is a code block (the 0.5B's failure when
tools were listed in session 12), and whether it reads as a call written out as text
("call text": ``name(...)``, a list of calls, a JSON call object).

Writes benchmarks/results/answer_turn.json.
Run: .venv/bin/python benchmarks/bench_answer_turn.py [--cases 40] [--seed 21] [--models A,B]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "examples"))

from bench_followup import conversations  # noqa: E402
from demo import QUESTIONS, TOOLS  # noqa: E402

from fncall.engine import load_engine  # noqa: E402
from fncall.engine.prefix_store import turn_off_for_this_process  # noqa: E402
from fncall.execute import Executor  # noqa: E402
from fncall.models import DEFAULT_MODEL, FAST_MODEL  # noqa: E402
from fncall.pipeline import LocalChat  # noqa: E402
from fncall.types import Message  # noqa: E402

RESULTS = HERE / "results" / "answer_turn.json"
WAYS = ("hidden", "listed")


def cases(model: LocalChat, count: int, seed: int) -> list[tuple[list[Message], list[Any], str]]:
    """(history ending in tool results, tools, kind): the demo's, then generated ones whose
    results each carry a number of their own."""
    out = []
    executor = Executor(TOOLS)
    for question in QUESTIONS[:4]:
        history = [Message(role="user", content=question)]
        turn = model.complete(history, TOOLS)
        if turn.tool_calls:
            results = [r.to_message() for r in executor.run(turn.tool_calls)]
            reply = Message(role="assistant", tool_calls=turn.tool_calls)
            out.append(([*history, reply, *results], list(TOOLS.tools), "demo"))
    numbers = random.Random(seed)
    out += conversations(
        count, seed, lambda call: {"status": "ok", "value": numbers.randint(1000, 99999)}
    )
    return out


def result_numbers(history: list[Message]) -> list[str]:
    found = []
    for message in history:
        if message.role == "tool" and isinstance(message.content, str):
            try:
                content = json.loads(message.content)
            except ValueError:
                continue
            if isinstance(content, dict) and isinstance(content.get("value"), int):
                found.append(str(content["value"]))
    return found


CALL_TEXT = re.compile(r"^\s*(?:\[\s*)?(?:[A-Za-z_][\w.]*\(|\{\s*\"name\")")


def reads_as_call(text: str) -> bool:
    """An answer that starts as a call written out (``get_weather(city="Paris")``, ``[f(x=1)]``,
    ``{"name": ...}``) rather than an answer. Not ``fncall.formats._scan.looks_like_call``: that
    one finds JSON call objects anywhere, and the 0.5B's call text is pythonic."""
    return bool(CALL_TEXT.match(text))


def answer(model: LocalChat, history: list[Message], tools: list[Any]) -> dict[str, Any]:
    model.complete(history[:1], tools)  # the calling turn: its prompt is the live KV cache
    began = time.perf_counter()
    turn = model.complete(history, tools, tool_choice="none")
    text = turn.content or ""
    numbers = result_numbers(history)
    return {
        "s": round(time.perf_counter() - began, 3),
        "new_tokens": turn.prompt_tokens - turn.cached_tokens,
        "text": text,
        "uses_results": all(n in text for n in numbers) if numbers else None,
        "code_block": "```" in text,
        "call_text": reads_as_call(text),
    }


def run_model(name: str, count: int, seed: int) -> dict[str, Any]:
    engine = load_engine(name)
    models = {way: LocalChat(engine, answer_with_tools=way == "listed") for way in WAYS}
    rows = []
    all_cases = cases(models["hidden"], count, seed)
    for index, (history, tools, kind) in enumerate(tqdm(all_cases, desc=name, file=sys.stderr)):
        order = WAYS if index % 2 == 0 else WAYS[::-1]
        row: dict[str, Any] = {"kind": kind}
        for way in order:
            row[way] = answer(models[way], history, tools)
        rows.append(row)
    engine.close()
    return {"summary": summarize(rows), "cases": rows}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for way in WAYS:
        scored = [r[way]["uses_results"] for r in rows if r[way]["uses_results"] is not None]
        summary[way] = {
            "median_s": round(statistics.median(r[way]["s"] for r in rows), 3),
            "median_new_tokens": statistics.median(r[way]["new_tokens"] for r in rows),
            "uses_results": f"{sum(scored)}/{len(scored)}",
            "code_blocks": sum(r[way]["code_block"] for r in rows),
            "call_text": sum(r[way]["call_text"] for r in rows),
            "empty": sum(not r[way]["text"].strip() for r in rows),
        }
    summary["listed_over_hidden_s"] = round(
        statistics.median(r["listed"]["s"] / r["hidden"]["s"] for r in rows), 3
    )
    return summary


def main() -> int:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40, help="generated conversations")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--models", default=f"{DEFAULT_MODEL},{FAST_MODEL}")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "answer turn after tool results: tools hidden vs listed",
        "seed": args.seed,
        "generated_cases": args.cases,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "models": {},
    }
    for name in args.models.split(","):
        report["models"][name] = run_model(name, args.cases, args.seed)
        print(name, json.dumps(report["models"][name]["summary"], indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
