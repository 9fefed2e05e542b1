"""A new process's first question, with and without the prefixes an earlier process left on disk
(``fncall.engine.prefix_store``): the ``fncall chat`` one-shot, a second ``make demo``, a
restarted server.

One process first asks the demo's first question with the store on, and closes (its states go
to a folder). Then, over ``--runs`` interleaved rounds, a new process per question and
configuration asks one of the demo's other tool questions as its *first* question:

- ``store``: with a fresh copy of that folder (so a round never sees what an earlier round
  wrote), the tool prefix and the judge's examples read from disk;
- ``none``: no store (``prefix_store_mb=0``), every prefix evaluated, as before.

Timed per process: loading the engine, the question (call -> result -> answer), and closing the
engine (where the store writes the new states). Both configurations must give the same calls
and answers. Writes benchmarks/results/cold_start.json.
Run: .venv/bin/python benchmarks/bench_cold_start.py [--runs 3] [--model qwen2.5-coder-1.5b]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "cold_start.json"
CONFIGS = ("store", "none")


def worker(model_name: str, question: str, store: str | None) -> dict[str, Any]:
    sys.path.insert(0, str(HERE.parent / "examples"))
    from demo import TOOLS

    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.execute import chat
    from fncall.models import install_model
    from fncall.pipeline import LocalChat

    path = install_model(model_name, progress=False)
    began = time.perf_counter()
    if store is None:
        engine = LlamaCppEngine(path, prefix_store_mb=0)
    else:
        engine = LlamaCppEngine(path, prefix_store_dir=store)
    loaded = time.perf_counter()
    result = chat(question, TOOLS, model=LocalChat(engine))
    answered = time.perf_counter()
    engine.close()
    closed = time.perf_counter()
    hits = engine.prefix_cache.store.hits if engine.prefix_cache.store is not None else 0
    return {
        "load_s": loaded - began,
        "seconds": answered - loaded,
        "close_s": closed - answered,
        "answer": result.text,
        "calls": [call.name for call in result.calls],
        "stored_states_read": hits,
    }


def spawn(model_name: str, question: str, store: Path | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", question, "--model", model_name]
    if store is not None:
        command += ["--store", str(store)]
    env = {**os.environ, "FNCALL_PREFIX_STORE_MB": ""}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default=None, help="catalogue model (default: the default)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from fncall.models import DEFAULT_MODEL, MODELS

    model_name = args.model or DEFAULT_MODEL
    if model_name not in MODELS:
        parser.error(f"--model must be one of {', '.join(MODELS)}, got {model_name!r}")
    if args.worker:
        print(json.dumps(worker(model_name, args.worker, args.store)))
        return 0
    if args.runs < 1:
        parser.error(f"--runs must be >= 1, got {args.runs}")
    sys.path.insert(0, str(HERE.parent / "examples"))
    from demo import QUESTIONS

    first, asked = QUESTIONS[0], QUESTIONS[1:4]
    rows: dict[str, list[list[dict[str, Any]]]] = {config: [] for config in CONFIGS}
    with tempfile.TemporaryDirectory() as folder:
        seeded = Path(folder) / "seeded"
        seed_row = spawn(model_name, first, seeded)
        print(f"seeded the store with {first!r}: {seed_row['seconds']:.1f} s", flush=True)
        for round_ in range(1, args.runs + 1):
            for config in CONFIGS:
                run: list[dict[str, Any]] = []
                for question in asked:
                    store = None
                    if config == "store":
                        store = Path(folder) / f"round{round_}-{len(run)}"
                        shutil.copytree(seeded, store)
                    run.append(spawn(model_name, question, store))
                    if store is not None:
                        shutil.rmtree(store)
                rows[config].append(run)
                times = ", ".join(f"{row['seconds']:.1f}" for row in run)
                print(f"round {round_}/{args.runs} {config:>5}: {times} s", flush=True)

    def median_of(config: str, key: str) -> list[float]:
        return [
            round(statistics.median(run[i][key] for run in rows[config]), 3)
            for i in range(len(asked))
        ]

    summary: dict[str, dict[str, Any]] = {
        config: {
            "per_question_median_s": median_of(config, "seconds"),
            "median_s": round(statistics.median(median_of(config, "seconds")), 3),
            "load_median_s": round(statistics.median(median_of(config, "load_s")), 3),
            "close_median_s": round(statistics.median(median_of(config, "close_s")), 3),
        }
        for config in CONFIGS
    }
    same = [
        a["answer"] == b["answer"] and a["calls"] == b["calls"]
        for a, b in zip(rows["store"][0], rows["none"][0], strict=True)
    ]
    ratio = summary["store"]["median_s"] / summary["none"]["median_s"]
    result = {
        "benchmark": "a new process's first question, prefixes on disk vs none",
        "model": model_name,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "runs": args.runs,
        "seeded_with": first,
        "questions": list(asked),
        "summary": summary,
        "store_over_none": round(ratio, 3),
        "same_calls_and_answers": f"{sum(same)}/{len(same)}",
        "stored_states_read": [row["stored_states_read"] for row in rows["store"][0]],
        "answers": {c: [row["answer"] for row in rows[c][0]] for c in CONFIGS},
        "all_runs": rows,
    }
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    on, off = summary["store"], summary["none"]
    print(
        f"first question of a new process: store {on['median_s']:.2f} s vs none "
        f"{off['median_s']:.2f} s ({ratio:.2f}x); load {on['load_median_s']:.2f} vs "
        f"{off['load_median_s']:.2f} s, close {on['close_median_s']:.2f} vs "
        f"{off['close_median_s']:.2f} s; same calls and answers {sum(same)}/{len(same)}"
    )
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
