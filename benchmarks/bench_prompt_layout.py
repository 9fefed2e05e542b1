"""The ``pythonic`` format's layout: instructions before or after the tool list, spaced or
compact JSON. Time and decisions.

The system message of a ``pythonic`` prompt holds the call instructions (~85 tokens, the same
for every tool set) and the tool list. After the list, they are new tokens whenever the tools
change, as in every BFCL case; before it, they are part of the prefix the engine keeps
(``fncall.engine.prefix_cache``). The list is one JSON line per tool; Qwen's tokenizer spends a
token on most of the spaces after ``:`` and ``,``. This asks the same cases under each variant
on one engine, interleaved (the order rotating case by case), under the model's default
settings (judge, call count, a plain-text answer stopped after 32 tokens as the BFCL runs do).
Each variant arranges the ``pythonic`` format's own instructions and tool lines:

- ``after``: the instructions after a spaced list (the ``pythonic`` format);
- ``first``: the same instructions ("listed below") before the spaced list;
- ``reminder``: ``first`` plus one short sentence after the list (``REMINDER``): the model's
  last words before the request, as the instructions were in ``after``;
- ``compact``: ``after`` with the list as compact JSON;
- ``first-compact``: ``first`` with the list as compact JSON (the ``pythonic-compact`` format,
  the 1.5B's default since session 23).

A variant may end in ``+draftN``: the same layout with the engine's prompt-lookup drafts at N
tokens a step (``fncall.engine.speculative``; off by default), e.g. ``first-compact+draft2``.
Two variants of one layout ask the same prompt twice on one engine, and the second finds it
cached: their decisions compare, their times do not (no ratio is reported between them).

It reports per variant: accuracy per category (BFCL's checker), how many call drafts were right
before the judge, well-formed outputs, the median seconds and new (not cached) prompt tokens of
a case, and the median per-case time ratio to the first variant asked.

Development data by default (``benchmarks/devsuite``, ``--limit`` cases per call category and
every irrelevance case, or ``--irrelevance-limit`` of them); ``--data-dir bfcl`` asks BFCL's
cases, for checking a layout chosen on the development data. Rows are written as they finish
(``<out>.rows.jsonl``); a rerun resumes, and asks only the variants a row lacks
(``--variants``); ``complete`` is false until every case was asked every variant.

    .venv/bin/python benchmarks/bench_prompt_layout.py [--model NAME] [--limit 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fncall.engine import load_engine
from fncall.engine.prefix_store import turn_off_for_this_process
from fncall.errors import ModelOutputError
from fncall.evaluate.checker import check_case
from fncall.evaluate.data import _category_file, load_cases, sample_cases
from fncall.evaluate.runner import _decision, ask_case
from fncall.evaluate.validity import form_problem
from fncall.formats.json_calls import tools_json_lines
from fncall.formats.pythonic import JSON_LISTING, PythonicFormat, call_instructions
from fncall.models import DEFAULT_MODEL
from fncall.package_data import bfcl_data_dir
from fncall.pipeline import LocalChat
from fncall.types import Tool

RESULTS = Path(__file__).parent / "results" / "prompt_layout.json"
CALL_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")

REMINDER = (
    "Reply with the list of calls, leaving out optional parameters the request does not give, "
    "or in plain text if no function fits."
)


class Layout(PythonicFormat):
    """``pythonic`` calls under one arrangement of the tool section."""

    def __init__(self, *, first: bool, compact: bool, reminder: bool = False) -> None:
        self.first, self.compact, self.reminder = first, compact, reminder

    def render_tools(self, tools: Sequence[Tool]) -> str:
        listing = f"{JSON_LISTING}{tools_json_lines(tools, compact=self.compact)}"
        if self.first:
            text = f"{call_instructions('below')}\n\n{listing}"
        else:
            text = f"{listing}\n\n{call_instructions('above')}"
        return f"{text}\n\n{REMINDER}" if self.reminder else text


VARIANTS: dict[str, dict[str, bool]] = {
    "after": {"first": False, "compact": False},
    "first": {"first": True, "compact": False},
    "reminder": {"first": True, "compact": False, "reminder": True},
    "compact": {"first": False, "compact": True},
    "first-compact": {"first": True, "compact": True},
}


def ask(chat: LocalChat, case: Any) -> dict[str, Any]:
    began = time.perf_counter()
    try:
        turn = ask_case(chat, case)
    except ModelOutputError:
        calls, decision, prompt, cached = None, None, 0, 0
    else:
        calls = tuple(case.restore_names(turn.tool_calls))
        decision = _decision(case, turn.decision)
        prompt, cached = turn.prompt_tokens, turn.cached_tokens
    return {
        "seconds": round(time.perf_counter() - began, 3),
        "valid": check_case(case, calls).valid,
        "well_formed": form_problem(case, calls) is None,
        "draft_valid": None if decision is None else decision["draft_valid"],
        "kept": None if decision is None else decision["kept"],
        "new_prompt_tokens": prompt - cached,
    }


def summarize(rows: list[dict[str, Any]], cases: list[Any], variants: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    everything = rows
    for layout in variants:
        rows = [row for row in everything if layout in row]
        if not rows:
            summary[layout] = {"cases": 0}
            continue
        right: dict[str, list[bool]] = defaultdict(list)
        drafts = formed = 0
        for row in rows:
            result = row[layout]
            right[row["category"]].append(result["valid"])
            formed += result["well_formed"]
            expects_call = row["category"] in CALL_CATEGORIES
            drafts += bool(expects_call and (result["draft_valid"] or result["valid"]))
        summary[layout] = {
            "accuracy": {c: round(100 * sum(v) / len(v), 1) for c, v in sorted(right.items())},
            "right": {c: f"{sum(v)}/{len(v)}" for c, v in sorted(right.items())},
            "call_drafts_right": drafts,
            "well_formed": f"{formed}/{len(rows)}",
            "case_p50_s": round(statistics.median(r[layout]["seconds"] for r in rows), 3),
            "new_prompt_tokens_p50": statistics.median(
                r[layout]["new_prompt_tokens"] for r in rows
            ),
        }
        summary[layout]["cases"] = len(rows)
        base = variants[0]  # the ratios' baseline
        paired = [r[layout]["seconds"] / r[base]["seconds"] for r in rows if base in r]
        if layout.partition("+")[0] == base.partition("+")[0]:
            # The same prompt twice on one engine: the second asked finds it all cached, so
            # the times say which went first, not what drafting does.
            paired = []
        if layout != base and paired:
            summary[layout][f"time_vs_{base}"] = round(statistics.median(paired), 3)
    summary["complete"] = all(summary[layout]["cases"] == len(cases) for layout in variants)
    return summary


def plot(summary: dict[str, Any], variants: list[str], title: str, path: Path) -> None:
    """Per variant: the share right per category, and the new prompt tokens of a case."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [v for v in variants if summary[v].get("cases")]
    if not shown:
        return  # nothing asked yet
    categories = sorted({c for v in shown for c in summary[v]["accuracy"]})
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / len(shown)
    for offset, layout in enumerate(shown):
        row = summary[layout]
        xs = [i + (offset - (len(shown) - 1) / 2) * width for i in range(len(categories))]
        label = f"{layout} ({row['cases']} cases, p50 {row['case_p50_s']:.2f} s)"
        left.bar(xs, [row["accuracy"].get(c, 0) for c in categories], width, label=label)
        right.bar(offset, row["new_prompt_tokens_p50"], 0.6)
    left.set_xticks(range(len(categories)))
    left.set_xticklabels(categories, fontsize=8)
    left.set_ylabel("% right (BFCL's checker)")
    left.set_ylim(0, 105)
    left.legend(fontsize=7, loc="lower left")
    right.set_xticks(range(len(shown)))
    right.set_xticklabels(shown, fontsize=8, rotation=20)
    right.set_ylabel("new prompt tokens a case (p50)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument(
        "--data-dir", default="benchmarks/devsuite", help="a folder of cases, or 'bfcl': BFCL's"
    )
    parser.add_argument("--limit", type=int, default=12, help="cases per call category")
    parser.add_argument(
        "--irrelevance-limit", type=int, default=None, help="no-call cases (default: all)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument(
        "--summary-only", action="store_true", help="summarise the recorded rows, ask nothing"
    )
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    data_dir = None if args.data_dir == "bfcl" else args.data_dir
    folder = bfcl_data_dir() if data_dir is None else Path(data_dir)
    # "LAYOUT+draftN": the layout with the engine's prompt-lookup drafts at N tokens a step
    # (``fncall.engine.speculative``); a bare layout keeps the engine's default.
    drafts: dict[str, int | None] = {}
    for variant in variants:
        layout, marker, count = variant.partition("+draft")
        if layout in VARIANTS and (not marker or count.isdigit()):
            drafts[variant] = int(count) if marker else None
    unknown = [v for v in variants if v not in drafts]
    if unknown or not variants:
        print(
            f"error: unknown variants {unknown}; accepted: {', '.join(VARIANTS)}, "
            "each optionally with +draftN (N tokens guessed a step)"
        )
        return 2

    # The categories the data folder has (``devsuite-optional`` has no irrelevance cases).
    present = [c for c in (*CALL_CATEGORIES, "irrelevance") if _category_file(folder, c)]
    cases = [
        case
        for category in present
        if category != "irrelevance"
        for case in sample_cases(load_cases([category], data_dir=data_dir), args.limit, args.seed)
    ]
    if "irrelevance" in present:
        cases += sample_cases(
            load_cases(["irrelevance"], data_dir=data_dir), args.irrelevance_limit, args.seed
        )
    rows_path = args.out.with_suffix(".rows.jsonl")
    done: dict[str, dict[str, Any]] = {}
    if rows_path.exists():
        for line in rows_path.read_text().splitlines():
            if line.strip():
                saved = json.loads(line)
                done[saved["id"]] = saved
    todo = [case for case in cases if any(v not in done.get(case.id, {}) for v in variants)]
    if args.summary_only:
        todo = []
    else:
        engine = load_engine(args.model)
        own_drafts = getattr(engine, "draft_tokens", None)
        if own_drafts is None and any(d is not None for d in drafts.values()):
            print(f"error: the {type(engine).__name__} takes no prompt-lookup drafts")
            return 2
        chats = {
            v: LocalChat(engine, format=Layout(**VARIANTS[v.partition("+")[0]]), text_max_tokens=32)
            for v in variants
        }
    print(f"{len(cases)} cases, {len(todo)} to ask", flush=True)
    with rows_path.open("a") as out:
        for i, case in enumerate(todo, 1):
            row: dict[str, Any] = done.get(case.id) or {"id": case.id, "category": case.category}
            for layout in variants[i % len(variants) :] + variants[: i % len(variants)]:
                if layout not in row:
                    if own_drafts is not None:  # a llama.cpp engine: set for this variant
                        wanted = drafts[layout]
                        engine.draft_tokens = own_drafts if wanted is None else wanted  # type: ignore[attr-defined]
                    row[layout] = ask(chats[layout], case)
            out.write(json.dumps(row) + "\n")  # a later line for an id replaces an earlier one
            out.flush()
            done[case.id] = row
            print(f"{i}/{len(todo)} {case.id} " + " ".join(str(row[v]) for v in variants))
    rows = [done[case.id] for case in cases if case.id in done]
    result = {
        "benchmark": "pythonic layouts: instructions before or after the tools, spaced or compact",
        "reminder": REMINDER,
        "model": args.model,
        "data_dir": args.data_dir,
        "limit": args.limit,
        "irrelevance_limit": args.irrelevance_limit,
        "seed": args.seed,
        "cases": len(rows),
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
        "summary": summarize(rows, cases, variants),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    where = "BFCL" if data_dir is None else Path(data_dir).name
    plot(
        result["summary"],
        variants,
        f"pythonic prompt layouts, {args.model}, {where}",
        args.out.with_suffix(".png"),
    )
    print(json.dumps(result["summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
