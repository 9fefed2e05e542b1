"""The judge's first-turn question only when the request names no called function: a replay.

``Judge(first_turn_question="unnamed")`` (``fncall.judge``) keeps a first turn's grounded draft
without the question when the request shares a content word with a called function's name or
description, and asks it otherwise. Its decisions follow from a run that asked the question of
every draft (the default of ``qwen2.5-coder-1.5b``): the draft and its scores are the same, and
only the turns it keeps unasked can change, from "turned down" to "kept". This reads recorded
``fncall eval run`` folders (each row keeps the judge's decision and the draft's verdict) and
reports, per category:

- the questions the run asked on first turns, and how many of them the setting would skip;
- the decisions that change: a draft the question turned down that the setting keeps (right
  when the draft was right, wrong otherwise; a case needing no call is then wrong);
- the accuracy with the question on every draft (as recorded) and under the setting.

No model runs: the time a skipped question saves is the run's own question time (see
``benchmarks/bench_bfcl_case.py --judge-question unnamed`` for a timed comparison).

    .venv/bin/python benchmarks/bench_question_gate.py --run runs/dev15 --data-dir \\
        benchmarks/devsuite --out benchmarks/results/question_gate_devsuite.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from fncall.errors import UserError
from fncall.evaluate.data import load_cases
from fncall.formats import auto_format, get_format
from fncall.judge import unasked
from fncall.types import ToolCall


def replay_run(folder: Path, data_dir: str | None) -> dict[str, Any]:
    """The setting's effect on one recorded run (see the module docstring)."""
    meta = json.loads((folder / "meta.json").read_text())
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    name = meta.get("format") or "auto"
    syntax = get_format(auto_format(meta.get("model"), None) if name == "auto" else name)
    categories = sorted({row["category"] for row in rows})
    cases = {case.id: case for case in load_cases(categories, data_dir=data_dir)}
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    changed = []
    for row in rows:
        counts = per[row["category"]]
        counts["cases"] += 1
        counts["right_recorded"] += bool(row["valid"])
        decision = row.get("decision") or {}
        right = bool(row["valid"])
        if decision.get("scores"):
            counts["questions"] += 1
            case = cases[row["id"]]
            request = next(m.content for m in reversed(case.messages) if m.role == "user")
            safe = {original: name for name, original in case.name_map.items()}
            offered = {safe.get(tool.name, tool.name): tool for tool in case.tools}
            # A kept turn's calls are in its output; a turned-down one asked every function of
            # its (grounded) draft, so the scores name them all.
            if decision["kept"]:
                calls = syntax.parse(row["raw"]).tool_calls
            else:
                calls = tuple(ToolCall(name=name, arguments={}) for name in decision["scores"])
            named = [c.name for c in calls if not unasked(c, offered.get(c.name), request)]
            if named:
                counts["skipped"] += 1
                if not decision["kept"]:
                    right = row["category"] != "irrelevance" and bool(decision.get("draft_valid"))
                    changed.append(
                        {
                            "id": row["id"],
                            "named": named[0],
                            "was_right": bool(row["valid"]),
                            "now_right": right,
                            "request": request,
                        }
                    )
        counts["right_setting"] += right
    return {
        "run": str(folder),
        "model": meta.get("model"),
        "per_category": {k: dict(v) for k, v in sorted(per.items())},
        "totals": {
            key: sum(v[key] for v in per.values())
            for key in ("cases", "questions", "skipped", "right_recorded", "right_setting")
        },
        "changed": changed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="a fncall eval run folder")
    parser.add_argument("--data-dir", default=None, help="the runs' BFCL-format data folder")
    parser.add_argument("--out", required=True, help="the JSON report to write")
    args = parser.parse_args()
    try:
        runs = [replay_run(Path(folder), args.data_dir) for folder in args.run]
    except (OSError, KeyError, ValueError, UserError) as exc:
        print(f"error: cannot replay {args.run}: {exc}", file=sys.stderr)
        return 2
    Path(args.out).write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    for run in runs:
        totals = run["totals"]
        print(
            f"{run['run']}: {totals['cases']} cases, first-turn questions {totals['questions']}, "
            f"skipped {totals['skipped']}; right {totals['right_recorded']} -> "
            f"{totals['right_setting']}"
        )
        for name, counts in run["per_category"].items():
            print(f"  {name}: {dict(counts)}")
        for change in run["changed"]:
            print(f"  changed: {change}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
