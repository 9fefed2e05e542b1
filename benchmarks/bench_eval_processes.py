"""Evaluation throughput of a local model with ``--workers``: one process against several.

With a local ``--model``, ``fncall eval run --workers K`` starts K processes that each load the
model with an equal share of the cores (or ``$FNCALL_THREADS`` each). This scores the same BFCL
cases with ``--workers 1`` (one process, every core) and ``--workers K`` (default: one process
per core), interleaved run by run, and reports cases per minute end to end (CLI start, model
loads, checker, JSONL writes) and the ratio to one process, medians over the runs. The runs are
constrained and stop text answers after 32 tokens, as benchmarks/eval_full.sh does.

    .venv/bin/python benchmarks/bench_eval_processes.py [--model qwen2.5-coder-0.5b]
        [--cases 12] [--processes K] [--runs 3] [--results PATH]

Writes benchmarks/results/eval_processes.json (or --results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "eval_processes.json"
CATEGORIES = ("simple_python", "multiple")


def one_run(model: str, workers: int, cases: int, out: Path) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "fncall", "eval", "run", "--model", model, "--constrained",
        "--text-max-tokens", "32",
        "--categories", *CATEGORIES, "--limit", str(max(1, cases // len(CATEGORIES))),
        "--seed", "0", "--workers", str(workers), "--no-progress", "--out", str(out),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "FNCALL_THREADS"}  # the default split
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=3600, env=env)
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (out / "results.jsonl").open()]
    return {
        "cases": len(rows),
        "wall_s": wall,
        "cases_per_min": len(rows) / wall * 60,
        "answers": {r["id"]: r["raw"] for r in rows},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON file to write")
    args = parser.parse_args()
    if args.processes < 2:
        sys.exit(f"--processes must be at least 2 to compare with one, got {args.processes}")

    figures: dict[int, list[dict[str, Any]]] = {1: [], args.processes: []}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for workers in figures:  # interleaved, so both settings see the same machine
                out = Path(tmp) / f"w{workers}-r{run}"
                figures[workers].append(one_run(args.model, workers, args.cases, out))
                print(f"run {run}, {workers} process(es): {figures[workers][-1]['wall_s']:.1f} s")
    same = sum(
        figures[1][0]["answers"][i] == figures[args.processes][0]["answers"][i]
        for i in figures[1][0]["answers"]
    )
    base = statistics.median(r["cases_per_min"] for r in figures[1])
    results = {
        "machine": platform.processor() or platform.machine(),
        "cores": len(os.sched_getaffinity(0)),
        "model": args.model,
        "cases": figures[1][0]["cases"],
        "runs": args.runs,
        "identical_answers": f"{same}/{figures[1][0]['cases']}",
        "workers": {
            str(workers): {
                "threads_per_process": max(1, len(os.sched_getaffinity(0)) // workers),
                "wall_s": round(statistics.median(r["wall_s"] for r in rows), 1),
                "cases_per_min": round(statistics.median(r["cases_per_min"] for r in rows), 1),
                "ratio_to_1_process": round(
                    statistics.median(r["cases_per_min"] for r in rows) / base, 2
                ),
            }
            for workers, rows in figures.items()
        },
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
