"""Where the judge's fixed question goes in its prompt: after the request (as it was) or first.

The judge (``fncall.judge``, step 2) asks one yes/no question per called function in a prompt
of fixed examples, whose KV cache every question shares. With the question text after the
request and the function's description, its ~18 tokens are new work each time; put first, they
are part of the shared prefix. This replays the questions of recorded evaluation runs (``fncall
eval run`` folders: each row keeps the judge's scores and whether the draft was right) under both
layouts, interleaved row by row on one engine, and reports for each:

- the median time of one question (``Engine.score``), and the ratio to the old layout;
- how well the score separates right drafts of call cases from drafts for irrelevance cases
  (AUC), and the decisions at the model's threshold (``fncall.judge.default_judge``);
- the run's accuracy per category with the draft kept or answered in text as the replayed score
  decides (rows the question never saw keep their recorded result), beside the recorded one.

The drafts are the recorded ones: only the question is asked again. Rows are written as they
finish (``<out>.rows.jsonl``) and a rerun resumes after the last; the summary says how many rows
of each run were replayed, and ``complete`` is false until all were.

    .venv/bin/python benchmarks/bench_judge_prompt.py --run runs/dev-pythonic --run runs/dev-irr \\
        --out benchmarks/results/judge_prompt_devsuite.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from fncall.engine import load_engine
from fncall.engine.prefix_store import turn_off_for_this_process
from fncall.evaluate.data import load_cases
from fncall.judge import NO, YES, Judge, _logsumexp, default_judge, last_request

LAYOUTS = {"after": False, "first": True}  # label -> Judge(question_first=...)


def load_run(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    meta = json.loads((folder / "meta.json").read_text())
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    return meta, rows


def asked(row: dict[str, Any]) -> bool:
    """Whether the judge's question decided the row (it has scores)."""
    return bool((row.get("decision") or {}).get("scores"))


def functions(row: dict[str, Any], case: Any) -> list[str]:
    """The model-facing names the judge would ask about, in order: those it scored, then the
    rest of the kept calls' functions (scoring stops at the first that passes)."""
    safe = {original: name for name, original in case.name_map.items()}
    names = list(row["decision"]["scores"])
    for call in row.get("calls") or []:
        name = safe.get(call["name"], call["name"])
        if name not in names:
            names.append(name)
    return names


def auc(positive: list[float], negative: list[float]) -> float | None:
    if not positive or not negative:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return round(wins / (len(positive) * len(negative)), 3)


def replay_rows(
    engine: Any, judges: dict[str, Judge], runs: list[Path], rows_path: Path
) -> list[dict[str, Any]]:
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if rows_path.exists():
        for line in rows_path.read_text().splitlines():
            if line.strip():
                saved = json.loads(line)
                done[(saved["run"], saved["id"])] = saved
    todo = []
    for folder in runs:
        meta, rows = load_run(folder)
        cases = {c.id: c for c in load_cases(meta["categories"], data_dir=meta.get("data_dir"))}
        todo += [(str(folder), row, cases[row["id"]]) for row in rows if asked(row)]
    remaining = [t for t in todo if (t[0], t[1]["id"]) not in done]
    print(f"{len(todo)} rows with a question, {len(remaining)} to replay", flush=True)
    with rows_path.open("a") as out:
        for i, (run, row, case) in enumerate(remaining, 1):
            request, _ = last_request(list(case.messages)) or ("", "")
            offered = {tool.name: tool for tool in case.tools}
            record: dict[str, Any] = {"run": run, "id": row["id"], "scores": {}, "seconds": {}}
            for label, judge in judges.items():
                scores, seconds = {}, []
                for name in functions(row, case):
                    if name not in offered:
                        continue
                    prompt = judge.prompt(engine.chat_template, request, offered[name])
                    began = time.perf_counter()
                    raw = engine.score(prompt, [*YES, *NO])
                    seconds.append(time.perf_counter() - began)
                    scores[name] = _logsumexp(raw[: len(YES)]) - _logsumexp(raw[len(YES) :])
                record["scores"][label] = scores
                record["seconds"][label] = seconds
            out.write(json.dumps(record) + "\n")
            out.flush()
            done[(run, row["id"])] = record
            if i % 25 == 0 or i == len(remaining):
                print(f"{i}/{len(remaining)}", flush=True)
    return [done[(t[0], t[1]["id"])] for t in todo if (t[0], t[1]["id"]) in done]


def summarize(runs: list[Path], replayed: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    by_key = {(r["run"], r["id"]): r for r in replayed}
    summary: dict[str, Any] = {}
    for label in LAYOUTS:
        seconds = [s for r in replayed for s in r["seconds"][label]]
        positive, negative = [], []
        right: dict[str, list[bool]] = defaultdict(list)
        recorded: dict[str, list[bool]] = defaultdict(list)
        complete = True
        missing: set[str] = set()  # categories with rows not replayed yet: no accuracy
        for folder in runs:
            _, rows = load_run(folder)
            for row in rows:
                category = row["category"]
                recorded[category].append(bool(row["valid"]))
                if not asked(row):
                    right[category].append(bool(row["valid"]))
                    continue
                record = by_key.get((str(folder), row["id"]))
                if record is None:
                    complete = False
                    missing.add(category)
                    continue
                scores = list(record["scores"][label].values())
                best = max(scores) if scores else float("-inf")
                decision = row["decision"]
                expects_call = not category.endswith("irrelevance")
                if expects_call and decision.get("draft_valid"):
                    positive.append(best)
                elif not expects_call:
                    negative.append(best)
                kept = best >= threshold
                right[category].append(
                    bool(decision.get("draft_valid")) if kept else not expects_call
                )
        accuracy = {
            c: round(100 * sum(v) / len(v), 1) for c, v in sorted(right.items()) if c not in missing
        }
        summary[label] = {
            "question_median_s": round(statistics.median(seconds), 3) if seconds else None,
            "questions": len(seconds),
            "auc": auc(positive, negative),
            "right_drafts_kept": sum(s >= threshold for s in positive),
            "right_drafts": len(positive),
            "irrelevant_turned_down": sum(s < threshold for s in negative),
            "irrelevant": len(negative),
            "accuracy": accuracy,
            "accuracy_mean": round(statistics.mean(accuracy.values()), 2) if accuracy else None,
            # As the runs were made: at the threshold of their time (``recorded_thresholds``).
            "recorded_accuracy": {
                c: round(100 * sum(v) / len(v), 1) for c, v in sorted(recorded.items())
            },
            "complete": complete,
            "replayed_rows": len(replayed),
        }
    after, first = summary["after"]["question_median_s"], summary["first"]["question_median_s"]
    if after and first:
        summary["first"]["time_vs_after"] = round(first / after, 3)
    return summary


def main() -> int:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="a recorded eval run")
    parser.add_argument("--out", required=True, help="summary JSON (rows go to <out>.rows.jsonl)")
    args = parser.parse_args()
    runs = [Path(run) for run in args.run]
    for folder in runs:
        if not (folder / "meta.json").is_file() or not (folder / "results.jsonl").is_file():
            print(f"error: {str(folder)!r} is not an eval run (meta.json, results.jsonl)")
            return 2
    models = {load_run(folder)[0]["model"] for folder in runs}
    if len(models) != 1:
        print(f"error: the runs must share one model, got {sorted(map(str, models))}")
        return 2
    model = models.pop()
    base = default_judge(model)
    judges = {label: replace(base, question_first=first) for label, first in LAYOUTS.items()}
    out = Path(args.out)
    engine = load_engine(model)
    replayed = replay_rows(engine, judges, runs, out.with_suffix(".rows.jsonl"))
    result = {
        "benchmark": "judge question layout, replayed on recorded drafts",
        "model": model,
        "threshold": base.threshold,
        "runs": [str(folder) for folder in runs],
        "recorded_thresholds": sorted(
            {
                row["decision"]["threshold"]
                for folder in runs
                for row in load_run(folder)[1]
                if asked(row)
            }
        ),
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
        "layouts": summarize(runs, replayed, base.threshold),
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["layouts"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
