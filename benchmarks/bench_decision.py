"""Call or abstain: the judge's threshold, chosen on generated requests (never on BFCL).

Each case is a request generated from the built-in function library (``fncall.train.generate``,
names unmasked): half need a call (simple / multiple / parallel / parallel_multiple), half need
none (an off-topic question, a request for a function that is not offered, or a near miss: the
offered function's own domain, a question it cannot answer). The 0.5B (FAST_MODEL; ``--model``
for another catalogue model) drafts each turn
with the judge off; then every function it called is scored by the judge (``fncall.judge``),
under both phrasings of its question (``fncall.judge.QUESTIONS``), and the share of each draft's
argument values found in the request is recorded (``grounding``), so one run sweeps every
setting:

- *abstained*: requests needing no call where every drafted call's function fails the judge;
- *kept*: requests needing calls whose draft is kept (grounded, and one called function
  passes), and *right kept*: the same among drafts that made exactly the expected calls;
- *time*: the draft and the judge's scoring, per case.

``--data-dir DIR`` takes the cases from a folder of BFCL-format files instead (every case of the
simple_python, multiple, parallel, parallel_multiple and irrelevance files there, e.g. the
hand-written development suite ``benchmarks/devsuite``); a draft is then right when the AST
checker accepts it.

Cases run in ``--workers`` processes and are appended to a JSONL as they finish, so an interrupted
run resumes where it stopped. Writes benchmarks/results/decision_FORMAT.json and .png (the draft's
call format: ``--format``, by default the one ``LocalChat`` picks for that model; another seed
than 303 ends the names in ``_seed<N>``).
Run: .venv/bin/python benchmarks/bench_decision.py [--cases 160] [--seed 303] [--workers 2]
     [--data-dir benchmarks/devsuite] [--model NAME] (another model than FAST_MODEL: its name
     ends the files' names, and the summary's ``default`` is at that model's own judge threshold)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import multiprocessing
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from fncall.engine.prefix_store import turn_off_for_this_process

RESULTS = Path(__file__).parent / "results"
TEXT_MAX_TOKENS = 32  # only the call-or-not decision is scored
MIX = {
    "simple": 0.125,
    "multiple": 0.125,
    "parallel": 0.125,
    "parallel_multiple": 0.125,
    "irrelevance": 0.5,
}


DEFAULT_SEED = 303  # another seed's summary names it: decision_<format>..._seed<N>.json
SUITE_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")


def _examples(cases: int, seed: int) -> list[Any]:
    from fncall.train.generate import generate_examples

    return generate_examples(cases, seed=seed, mix=MIX, masking_probability=0.0)


def _suite(data_dir: str) -> list[Any]:
    from fncall.evaluate.data import load_cases

    return load_cases(SUITE_CATEGORIES, data_dir=data_dir)


def _requests(
    cases: int, seed: int, data_dir: str | None
) -> list[tuple[str, list[Any], list[Any]]]:
    """(kind, messages before the answer, tools) for each case, in a fixed order."""
    if data_dir:
        return [(c.category, list(c.messages), list(c.tools)) for c in _suite(data_dir)]
    return [(e.source, list(e.messages[:-1]), list(e.tools)) for e in _examples(cases, seed)]


def _work(job: tuple[int, int, int, int, str, str, str | None, str | None, str]) -> None:
    """Worker ``part`` of ``parts``: draft and score its share, appending rows to ``path``."""
    part, parts, cases, seed, path, format_name, data_dir, count, model = job
    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.judge import QUESTIONS, Judge, grounding
    from fncall.models import install_model
    from fncall.pipeline import LocalChat

    done = {row["i"] for row in _rows(Path(path))}
    if all(i in done for i in range(part, cases, parts)):
        return
    engine = LlamaCppEngine(install_model(model, progress=False))
    chat = LocalChat(
        engine,
        format=format_name,
        judge=None,
        count_threshold=count,
        text_max_tokens=TEXT_MAX_TOKENS,
    )
    judges = {q: Judge(threshold=-math.inf, question=q) for q in QUESTIONS}
    with open(path, "a", encoding="utf-8") as out:
        for i, (kind, messages, tools) in enumerate(_requests(cases, seed, data_dir)):
            if i % parts != part or i in done:
                continue
            began = time.perf_counter()
            turn = chat.complete(messages, tools, top_logprobs=0)
            draft_s = time.perf_counter() - began
            began = time.perf_counter()
            request = messages[-1].content
            scores = {
                q: dict(judge.scores(engine, engine.chat_template, request, turn.tool_calls, tools))
                for q, judge in judges.items()
            }
            judge_s = (time.perf_counter() - began) / len(judges)
            row = {
                "i": i,
                "kind": kind,
                "scores": scores,
                "grounding": grounding(turn.tool_calls, messages[-1].content),
                "calls": [[c.name, dict(c.arguments)] for c in turn.tool_calls],
                # The draft's first tokens and their log-probabilities: how sure the model was
                # that the turn is a call (the first token decides between a call and text).
                "first_tokens": [[t.token, round(t.logprob, 4)] for t in (turn.logprobs or ())[:4]],
                "draft_s": round(draft_s, 3),
                "judge_s": round(judge_s, 3),
            }
            out.write(json.dumps(row) + "\n")
            out.flush()


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a cut line: that case runs again
            rows.append(json.loads(line))
    return rows


def outcome(
    rows: list[dict[str, Any]], question: str, threshold: float, min_grounding: float = 0.0
) -> dict[str, Any]:
    """At these settings: requests needing no call that abstain, requests needing calls whose
    draft is kept, and of those drafts the right ones (every call as generated) kept."""
    irrelevant = [r for r in rows if not r["expected"]]
    drafted = [r for r in rows if r["expected"] and r["calls"]]
    right = [r for r in drafted if r["right"]]

    def passes(row: dict[str, Any]) -> bool:
        if row["grounding"] < min_grounding:
            return False
        return any(s >= threshold for s in row["scores"][question].values())

    def share(selected: list[dict[str, Any]], count: int) -> float:
        return 100 * count / max(1, len(selected))

    abstained = share(irrelevant, sum(not passes(r) for r in irrelevant))
    kept = share(drafted, sum(passes(r) for r in drafted))
    return {
        "question": question,
        "threshold": threshold,
        "min_grounding": min_grounding,
        "abstained_pct": abstained,
        "kept_pct": kept,
        "right_kept_pct": share(right, sum(passes(r) for r in right)),
        "balanced_pct": (abstained + kept) / 2,
    }


def _mark_right(rows: list[dict[str, Any]], cases: int, seed: int, data_dir: str | None) -> None:
    """``expected``: the functions the case needs (none for a request no function fits);
    ``right``: the draft made exactly the expected calls (names and arguments, any order) or, for
    a suite's case, the AST checker accepts it; ``grounding`` recomputed with today's
    ``fncall.judge.grounding``, so rows drafted before it changed replay under it."""
    from fncall.judge import grounding

    requests = _requests(cases, seed, data_dir)
    for row in rows:
        row["right"] = _right(row, _calls(row["calls"]), cases, seed, data_dir)
        row["expected"] = _expected(row["i"], cases, seed, data_dir)
        row["grounding"] = grounding(_calls(row["calls"]), requests[row["i"]][1][-1].content)


def _calls(pairs: list[list[Any]]) -> list[Any]:
    from fncall.types import ToolCall

    return [ToolCall(name=name, arguments=args) for name, args in pairs]


@functools.cache
def _gold(cases: int, seed: int, data_dir: str | None) -> list[Any]:
    return _suite(data_dir) if data_dir else _examples(cases, seed)


def _expected(i: int, cases: int, seed: int, data_dir: str | None) -> list[str]:
    gold = _gold(cases, seed, data_dir)[i]
    if data_dir:
        return sorted({name for answer in gold.ground_truth for name in answer})
    return sorted({c.name for c in gold.messages[-1].tool_calls})


def _right(
    row: dict[str, Any], calls: list[Any], cases: int, seed: int, data_dir: str | None
) -> bool:
    """Whether ``calls`` answer the case: the AST checker for a suite's case, exactly the
    generated calls (names and arguments, any order) otherwise. False for no call."""
    gold = _gold(cases, seed, data_dir)[row["i"]]
    if not calls:
        return False
    if data_dir:
        from fncall.evaluate.checker import check_case

        return bool(gold.ground_truth) and check_case(gold, calls).valid
    expected = gold.messages[-1].tool_calls
    want = sorted(json.dumps([c.name, dict(c.arguments)], sort_keys=True) for c in expected)
    got = sorted(json.dumps([c.name, dict(c.arguments)], sort_keys=True) for c in calls)
    return bool(want) and want == got


def _exact_grounding(calls: list[Any], request: str) -> float:
    """Grounding as the judge counted it before session 14: values as exact whole words."""
    from fncall.values import argument_values

    values = [v for call in calls for v in argument_values(dict(call.arguments))]
    if not values:
        return 1.0
    pattern = r"(?<![\w.]){}(?![\w]|\.\d)"
    found = [re.search(pattern.format(re.escape(v)), request.lower()) for v in values]
    return sum(f is not None for f in found) / len(values)


class _Setting(NamedTuple):
    """One row of ``replay``'s table."""

    measure: Any  # the grounding measure: grounding or _exact_grounding
    judge: Any  # a fncall.judge.Judge, or None: no judge
    min_grounding: float
    threshold: float  # the question's; -inf: not asked
    strip: bool  # grounding measured without invented optional values
    # When the question is asked on a first turn: None (always), or the ``Judge``'s
    # ``first_turn_question`` ("unnamed", "unsure": the rows' recorded first token decides).
    gate: str | None = None


def replay(
    rows: list[dict[str, Any]], cases: int, seed: int, data_dir: str | None, threshold: float
) -> dict[str, dict[str, float]]:
    """The ablation: each judge setting applied to the recorded drafts and scores, scored end to
    end per kind (a call case is right when the calls returned are; a case needing no call when
    none is returned). Drafts get today's ``distinct_calls`` first (rows drafted before it).
    The last rows are the model's own threshold (``threshold``), with the question on every
    draft, only on drafts whose request names none of the called functions
    (``Judge(first_turn_question="unnamed")``), and also on those the model drafted unsurely
    (``"unsure"``: rows that recorded the draft's first token); ``questions`` counts the
    drafts each setting asks about."""
    from fncall.judge import UNNAMED, UNSURE, Judge, distinct_calls, grounding, unasked

    requests = _requests(cases, seed, data_dir)
    settings: dict[str, _Setting] = {
        "no judge": _Setting(grounding, None, 0.0, -math.inf, False),
        "before session 14: exact words >= 0.2, question 0.4, draft kept whole": _Setting(
            _exact_grounding,
            Judge(min_function_grounding=0.0, given_options_only=False),
            0.2,
            0.4,
            False,
        ),
        "+ ungrounded functions dropped beside grounded ones": _Setting(
            _exact_grounding, Judge(given_options_only=False), 0.2, 0.4, False
        ),
        "+ invented optional values dropped": _Setting(_exact_grounding, Judge(), 0.2, 0.4, False),
        **{
            f"+ values in any spelling, grounding >= {g}": _Setting(
                grounding, Judge(), g, 0.4, False
            )
            for g in (0.2, 0.5, 0.6, 0.7)
        },
        **{
            f"+ grounding without invented optional values, >= {g}": _Setting(
                grounding, Judge(), g, 0.4, True
            )
            for g in (0.5, 0.6, 0.7)
        },
        "the default without the question": _Setting(grounding, Judge(), 0.6, -math.inf, True),
        f"the model's threshold ({threshold:g}), question on every draft": _Setting(
            grounding, Judge(), 0.6, threshold, True
        ),
        f"the model's threshold ({threshold:g}), question only when no function is named": (
            _Setting(grounding, Judge(), 0.6, threshold, True, gate=UNNAMED)
        ),
    }
    if all(row.get("first_tokens") is not None for row in rows):
        sure = Judge().sure
        settings[
            f"the model's threshold ({threshold:g}), question when no function is named "
            f"or the draft's first token was below {sure:g}"
        ] = _Setting(grounding, Judge(), 0.6, threshold, True, gate=UNSURE)
    table: dict[str, dict[str, float]] = {}
    for label, (measure, judge, min_grounding, at, strip, gate) in settings.items():
        hits: dict[str, list[bool]] = {}
        questions = 0
        for row in rows:
            _, messages, tools = requests[row["i"]]
            request = messages[-1].content
            draft = list(distinct_calls(_calls(row["calls"])))
            final = draft
            if draft and judge is not None:
                kept = judge.grounded_functions(draft, request)
                measured = (
                    judge.given_options(draft, tools, request, defaults=False) if strip else draft
                )
                offered = {tool.name: tool for tool in tools}
                named = gate in (UNNAMED, UNSURE) and any(
                    not unasked(c, offered.get(c.name), request) for c in kept
                )
                if gate == UNSURE:
                    first = row["first_tokens"][0][1] if row["first_tokens"] else -math.inf
                    named = named and math.exp(first) >= judge.sure
                grounded = measure(measured, request) >= min_grounding
                questions += grounded and not named and at > -math.inf
                passes = grounded and (
                    named
                    or any(
                        score >= at
                        for name, score in row["scores"]["part"].items()
                        if name in {c.name for c in kept}
                    )
                )
                final = list(judge.given_options(kept, tools, request)) if passes else []
            kind = row["kind"].removeprefix("generated:")
            needs_call = bool(_expected(row["i"], cases, seed, data_dir))
            good = _right(row, final, cases, seed, data_dir) if needs_call else not final
            hits.setdefault(kind, []).append(good)
        table[label] = {kind: 100 * sum(v) / len(v) for kind, v in sorted(hits.items())}
        table[label]["questions"] = questions
    return table


def main() -> int:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=160)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--format", default=None, help="call format (default: the model's)")
    parser.add_argument(
        "--data-dir", default=None, help="a folder of BFCL-format cases (e.g. benchmarks/devsuite)"
    )
    parser.add_argument(
        "--count",
        choices=("off", "auto"),
        default="off",
        help="the call-count decision while drafting (off: greedy, as the seed runs were drafted)",
    )
    parser.add_argument("--model", default=None, help="a catalogue model (default: FAST_MODEL)")
    args = parser.parse_args()
    from fncall.formats import auto_format, format_names
    from fncall.judge import default_judge
    from fncall.models import FAST_MODEL, MODELS

    model = args.model or FAST_MODEL
    if model not in MODELS:
        parser.error(f"--model {model!r}: choose from {', '.join(MODELS)}")
    format_name = args.format or auto_format(model, None)
    if format_name not in format_names():
        parser.error(f"--format {format_name!r}: choose from {', '.join(format_names())}")
    if args.cases < 2 or args.workers < 1:
        parser.error("--cases must be >= 2 and --workers >= 1")
    if args.data_dir:
        from fncall.errors import UserError

        try:
            args.cases = len(_suite(args.data_dir))
        except UserError as exc:
            parser.error(f"--data-dir {args.data_dir!r}: {exc}")
    RESULTS.mkdir(exist_ok=True)
    source = f"{Path(args.data_dir).name}" if args.data_dir else f"seed{args.seed}"
    count = "" if args.count == "off" else f"_count{args.count}"
    if model != FAST_MODEL:
        count += f"_{model}"  # every file of the run names its model
    path = RESULTS / f"decision_rows_{source}_{args.cases}_{format_name}{count}.jsonl"
    os.environ.setdefault("FNCALL_THREADS", str(max(1, (os.cpu_count() or 1) // args.workers)))
    jobs = [
        (
            p,
            args.workers,
            args.cases,
            args.seed,
            str(path),
            format_name,
            args.data_dir,
            None if args.count == "off" else "auto",
            model,
        )
        for p in range(args.workers)
    ]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        pool.map(_work, jobs)
    rows = sorted(_rows(path), key=lambda r: r["i"])
    if len({r["i"] for r in rows}) != args.cases:
        print(
            f"only {len(rows)} of {args.cases} cases finished; run again to resume", file=sys.stderr
        )
        return 1
    from fncall.judge import DEFAULT_MIN_GROUNDING, DEFAULT_QUESTION, QUESTIONS

    threshold = default_judge(model).threshold  # the model's own setting

    _mark_right(rows, args.cases, args.seed, args.data_dir)
    sweeps = {
        f"{q}, grounding >= {g}": [outcome(rows, q, t / 20, g) for t in range(-10, 41)]
        for q in QUESTIONS
        for g in (0.0, DEFAULT_MIN_GROUNDING)
    }
    default = outcome(rows, DEFAULT_QUESTION, threshold, DEFAULT_MIN_GROUNDING)
    summary = {
        "cases": len(rows),
        "irrelevant": sum(not r["expected"] for r in rows),
        "without_judge": outcome(rows, DEFAULT_QUESTION, -math.inf),
        "grounding_only": outcome(rows, DEFAULT_QUESTION, -math.inf, DEFAULT_MIN_GROUNDING),
        "question_only": outcome(rows, DEFAULT_QUESTION, threshold),
        "default": default,
        "best_balanced": {
            q: max(sweep, key=lambda o: o["balanced_pct"]) for q, sweep in sweeps.items()
        },
        "draft_p50_s": statistics.median(r["draft_s"] for r in rows),
        "judge_p50_s_per_question": (
            statistics.median(timed)
            if (
                timed := [
                    r["judge_s"] for r in rows if r["scores"][DEFAULT_QUESTION] and "judge_s" in r
                ]
            )
            else None  # rows recorded without judge timings
        ),
        "replay": replay(rows, args.cases, args.seed, args.data_dir, threshold),
    }
    report = {
        "benchmark": "decision: the judge's threshold on generated requests",
        "seed": None if args.data_dir else args.seed,
        "data_dir": args.data_dir,
        "format": format_name,
        "model": model,
        "judge_threshold": threshold,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "summary": summary,
        "sweeps": sweeps,
    }
    if args.data_dir:
        out = RESULTS / f"decision_{source}_{format_name}{count}.json"
    else:
        seed = "" if args.seed == DEFAULT_SEED else f"_seed{args.seed}"
        out = RESULTS / f"decision_{format_name}{count}{seed}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    data = (
        f"{Path(args.data_dir).name} cases"
        if args.data_dir
        else f"generated requests, seed {args.seed}"
    )
    _plot(sweeps, default, out.with_suffix(".png"), f"The judge's trade-off ({model}, {data})")
    print(json.dumps({k: v for k, v in summary.items() if k != "replay"}, indent=2))
    print(_markdown(summary["replay"]))
    return 0


def _markdown(table: dict[str, dict[str, float]]) -> str:
    kinds = list(next(iter(table.values())))
    lines = [
        "| setting | " + " | ".join(kinds) + " |",
        "|---|" + "---:|" * len(kinds),
        *(
            f"| {label} | " + " | ".join(f"{row[k]:.1f}" for k in kinds) + " |"
            for label, row in table.items()
        ),
    ]
    return "\n".join(lines)


def _plot(
    sweeps: dict[str, list[dict[str, Any]]], default: dict[str, Any], path: Path, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for question, sweep in sweeps.items():
        ax.plot(
            [o["kept_pct"] for o in sweep],
            [o["abstained_pct"] for o in sweep],
            marker=".",
            label=question,
        )
    ax.scatter(
        [default["kept_pct"]],
        [default["abstained_pct"]],
        color="red",
        zorder=3,
        label=f"default ({default['question']}, {default['threshold']}, "
        f"grounding >= {default['min_grounding']})",
    )
    ax.set_xlabel("requests needing calls: drafted calls kept (%)")
    ax.set_ylabel("requests needing no call: abstained (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
