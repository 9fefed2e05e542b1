"""After the results: does the model answer, or call again? Generated call -> result conversations.

Each case is a generated request from the built-in function library (no BFCL data; names
unmasked, so the question reads naturally) whose calls have been made and answered with a
result. The model is then asked for the next turn, two ways, on the same cases in one run:

- ``model``: one ``LocalChat.complete`` under ``tool_choice="auto"``, what a client driving its
  own loop gets from a single request;
- ``loop``: the same turn through the conversation loop (``fncall.execute.conversation``), whose
  repeated-call rule asks again with ``tool_choice="none"`` when the model only repeats work
  already done (rule 4: the same call, or the same function after a good result with no new
  value from the request).

An answer is a turn without calls. Writes benchmarks/results/followup.json.
Run: .venv/bin/python benchmarks/bench_followup.py [--cases 100] [--model NAME] (default model)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fncall.engine import load_engine
from fncall.engine.prefix_store import turn_off_for_this_process
from fncall.execute import AskModel, CallsRepeated, ToolConversation, run_conversation
from fncall.judge import answered_calls, call_key
from fncall.models import DEFAULT_MODEL
from fncall.pipeline import LocalChat
from fncall.train.generate import generate_examples
from fncall.types import Message, ToolCall, ToolResult

RESULTS = Path(__file__).parent / "results" / "followup.json"
MIX = {"simple": 0.4, "multiple": 0.3, "parallel": 0.15, "parallel_multiple": 0.15}


def finished(call: ToolCall) -> dict[str, Any]:
    """The result every generated call gets unless told otherwise."""
    return {"status": "ok", "result": f"{call.name} finished", "value": 42}


def conversations(
    count: int, seed: int, result: Callable[[ToolCall], Any] = finished
) -> list[tuple[list[Message], list[Any], str]]:
    """(history ending in tool results, tools, kind) for ``count`` generated requests; each
    call's result content is ``result(call)``, asked in order."""
    cases = []
    for example in generate_examples(count, seed=seed, mix=MIX, masking_probability=0.0):
        user, reply = example.messages[-2], example.messages[-1]
        results = [
            ToolResult(call_id=call.id, name=call.name, content=result(call)).to_message()
            for call in reply.tool_calls
        ]
        cases.append(([user, reply, *results], list(example.tools), example.source))
    return cases


def main() -> int:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    chat = LocalChat(load_engine(args.model), max_tokens=256)
    rows = []
    for history, tools, kind in tqdm(conversations(args.cases, args.seed), file=sys.stderr):
        started = time.perf_counter()
        turn = chat.complete(history, tools)
        model_s = time.perf_counter() - started
        repeated = bool(turn.tool_calls) and all(
            call_key(c) in answered_calls(history) for c in turn.tool_calls
        )

        def complete(ask: AskModel, first: Any = turn, past: tuple = tuple(history)) -> Any:
            # The loop's first request is exactly the one just made: reuse its answer.
            if ask.tool_choice.mode == "auto" and ask.messages == past:
                return first
            return ask.send(chat.complete)

        started = time.perf_counter()
        run = run_conversation(
            ToolConversation(history, tools, max_steps=1), complete, lambda calls: None, None
        )
        loop_s = model_s + time.perf_counter() - started
        rows.append(
            {
                "kind": kind,
                "model_answered": not turn.tool_calls,
                "model_repeated": repeated,
                "loop_answered": run.stop_reason == "final_answer",
                "loop_reasked": any(isinstance(e, CallsRepeated) for e in run.events),
                # the turn called a function the request's calls had not (rule 4's second half)
                "other_function": any(
                    c.name not in {d.name for d in history[1].tool_calls} for c in turn.tool_calls
                ),
                "answer": run.final,
                "asked_calls": [[c.name, dict(c.arguments)] for c in history[1].tool_calls],
                "model_calls": [[c.name, dict(c.arguments)] for c in turn.tool_calls],
                "model_s": round(model_s, 3),
                "loop_s": round(loop_s, 3),
            }
        )
    n = len(rows)
    summary = {
        "cases": n,
        "model_answers_pct": round(100 * sum(r["model_answered"] for r in rows) / n, 1),
        "model_repeats_pct": round(100 * sum(r["model_repeated"] for r in rows) / n, 1),
        "loop_answers_pct": round(100 * sum(r["loop_answered"] for r in rows) / n, 1),
        # The loop as it was before rule 4 covered calls with other arguments: only exact
        # repeats were asked again (the same cases; an exact repeat is re-asked either way).
        "exact_repeats_only_answers_pct": round(
            100
            * sum(r["model_answered"] or (r["model_repeated"] and r["loop_answered"]) for r in rows)
            / n,
            1,
        ),
        "loop_reasked_other_function_pct": round(
            100 * sum(r["loop_reasked"] and r["other_function"] for r in rows) / n, 1
        ),
        "model_p50_s": round(statistics.median(r["model_s"] for r in rows), 2),
        "loop_p50_s": round(statistics.median(r["loop_s"] for r in rows), 2),
    }
    report = {
        "benchmark": "followup",
        "model": args.model,
        "seed": args.seed,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "summary": summary,
        "cases": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
