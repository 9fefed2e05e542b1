"""Agent questions end to end on the 0.5B model (FAST_MODEL): the demo's five questions, call ->
result -> answer, timed per question, three ways in one run:

- ``before``: the engine as it was before saved prefixes: only the live context's prefix is
  reused (``prefix_cache_mb=0``), OpenMP threads sleep at every barrier
  (``OMP_WAIT_POLICY=PASSIVE``, which the engine used to set), and llama.cpp is pip's portable
  build;
- ``after``: the engine as it ships (saved prefixes, OpenMP's own wait policy, the build
  ``make install`` put in place: native for this CPU where scripts/llama_native.py could);
- ``plain``: bare ``llama-cpp-python`` as pip builds it (portable; ``Llama.create_completion``,
  greedy) given the very prompts ``after`` rendered, each for as many tokens as ``after``
  generated: the same conversation without fncall (its own single-prompt prefix reuse; no
  grammar, no saved prefixes).

Each configuration runs in its own process (the OpenMP policy is fixed when a process loads
it), the configurations interleaved over ``--runs`` rounds; the figure is the median over the
rounds of each question's time, and the median over the five questions of those. Writes
benchmarks/results/agent.json and agent.png.

``--models A,B`` instead times ``after`` for each catalogue model (one process each, interleaved
over the rounds; the first is the baseline of the ratios) and writes
benchmarks/results/agent_models.json: the measure behind choosing the default model.
Run: .venv/bin/python benchmarks/bench_agent.py [--runs 3] [--models qwen2.5-coder-0.5b,...]
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

from fncall.engine.prefix_store import turn_off_for_this_process

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "agent.json"
PLOT = HERE / "results" / "agent.png"
CONFIGS = ("before", "after", "plain")


def run_fncall(
    config: str, prompts_file: Path, model_name: str | None = None
) -> list[dict[str, Any]]:
    sys.path.insert(0, str(HERE.parent / "examples"))
    from demo import QUESTIONS, TOOLS

    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.execute import chat
    from fncall.models import FAST_MODEL, install_model
    from fncall.pipeline import LocalChat

    options = {"prefix_cache_mb": 0} if config == "before" else {}
    path = install_model(model_name or FAST_MODEL, progress=False)
    engine = LlamaCppEngine(path, **options)
    turns: list[dict[str, Any]] = []
    generate = engine.generate

    def record(prompt: str, **kwargs: Any) -> Any:
        out = generate(prompt, **kwargs)
        turns.append(
            {"prompt": prompt, "tokens": out.completion_tokens, "cached": out.cached_tokens}
        )
        return out

    engine.generate = record  # type: ignore[method-assign]
    model = LocalChat(engine)
    import llama_cpp

    rows = []
    for question in QUESTIONS:
        turns.clear()
        began = time.perf_counter()
        result = chat(question, TOOLS, model=model)
        rows.append(
            {
                "question": question,
                "seconds": time.perf_counter() - began,
                "answer": result.text,
                "calls": [call.name for call in result.calls],
                "turns": list(turns),
                "library": llama_cpp.__file__,
            }
        )
    if config == "after":
        prompts_file.write_text(json.dumps([row["turns"] for row in rows]))
    return rows


def run_plain(prompts_file: Path) -> list[dict[str, Any]]:
    from llama_cpp import Llama

    from fncall.engine.threads import default_threads
    from fncall.models import FAST_MODEL, install_model

    threads = default_threads()
    llm = Llama(
        model_path=str(install_model(FAST_MODEL, progress=False)),
        n_ctx=4096,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    rows = []
    for turns in json.loads(prompts_file.read_text()):
        began = time.perf_counter()
        for turn in turns:
            llm.create_completion(turn["prompt"], max_tokens=max(1, turn["tokens"]), temperature=0)
        rows.append({"seconds": time.perf_counter() - began})
    return rows


def worker(config: str, prompts_file: Path, model_name: str | None = None) -> None:
    if config == "plain":
        rows = run_plain(prompts_file)
    else:
        rows = run_fncall(config, prompts_file, model_name)
    print(json.dumps(rows))


def spawn(
    config: str, prompts_file: Path, portable: Path, model_name: str | None = None
) -> list[dict[str, Any]]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if config == "before":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if config in ("before", "plain"):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(portable), env.get("PYTHONPATH")]))
    command = [sys.executable, __file__, "--worker", config, "--prompts", str(prompts_file)]
    if model_name:
        command += ["--model", model_name]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{config} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def medians(rounds: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """One configuration's rounds: each question's median time, their median and their sum."""
    per_question = [
        statistics.median(run[i]["seconds"] for run in rounds) for i in range(len(rounds[0]))
    ]
    return {
        "per_question_median_s": [round(s, 3) for s in per_question],
        "median_s": round(statistics.median(per_question), 3),
        "total_s": round(sum(per_question), 3),
    }


def plot(summary: dict[str, Any], questions: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.27
    for offset, config in enumerate(CONFIGS):
        values = summary[config]["per_question_median_s"]
        xs = [i + (offset - 1) * width for i in range(len(values))]
        ax.bar(xs, values, width, label=f"{config} (median {summary[config]['median_s']:.1f} s)")
    ax.axhline(3.0, color="grey", linestyle="--", linewidth=1, label="target 3 s")
    ax.set_xticks(range(len(questions)))
    ax.set_xticklabels([f"Q{i + 1}" for i in range(len(questions))])
    ax.set_ylabel("seconds per question (call, result, answer)")
    ax.set_title("The demo's five questions (examples/demo.py), qwen2.5-coder-0.5b, 2 CPU cores")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def main() -> int:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--prompts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument(
        "--models", help="comma-separated catalogue models: time 'after' for each (see above)"
    )
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.prompts, args.model)
        return 0
    if args.runs < 1:
        parser.error(f"--runs must be >= 1, got {args.runs}")
    if args.models is not None:
        from fncall.models import MODELS

        names = [name.strip() for name in args.models.split(",") if name.strip()]
        unknown = [name for name in names if name not in MODELS]
        if len(names) < 2 or unknown:
            parser.error(f"--models needs two or more of {', '.join(MODELS)}; got {args.models!r}")
        return compare_models(names, args.runs)
    runs: dict[str, list[list[dict[str, Any]]]] = {config: [] for config in CONFIGS}
    with tempfile.TemporaryDirectory() as folder:
        prompts = Path(folder) / "prompts.json"
        portable = Path(folder) / "portable"
        sys.path.insert(0, str(HERE.parent / "scripts"))
        import llama_native

        llama_native.unpack(llama_native.portable_spec(), portable, portable=True)
        for round_ in range(1, args.runs + 1):
            for config in CONFIGS:  # plain after after: it replays after's prompts
                rows = spawn(config, prompts, portable)
                runs[config].append(rows)
                times = ", ".join(f"{row['seconds']:.1f}" for row in rows)
                print(f"round {round_}/{args.runs} {config:>6}: {times} s", flush=True)
    questions = [row["question"] for row in runs["after"][0]]
    summary: dict[str, Any] = {config: medians(runs[config]) for config in CONFIGS}
    for config in ("before", "after"):
        summary[config]["cached_tokens_per_question"] = [
            sum(t["cached"] for t in row["turns"]) for row in runs[config][0]
        ]
    same = [
        a["answer"] == b["answer"] and a["calls"] == b["calls"]
        for a, b in zip(runs["before"][0], runs["after"][0], strict=True)
    ]
    after, before, plain = (summary[c]["median_s"] for c in ("after", "before", "plain"))
    result = {
        "benchmark": "agent questions (examples/demo.py), call -> result -> answer",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "runs": args.runs,
        "questions": questions,
        "summary": summary,
        "after_over_before": round(after / before, 3),
        "after_over_plain": round(after / plain, 3),
        "same_answers_before_after": f"{sum(same)}/{len(same)}",
        "answers": {c: [row["answer"] for row in runs[c][0]] for c in ("before", "after")},
        "llama_cpp_after": runs["after"][0][0]["library"],
        "all_runs_s": {c: [[r["seconds"] for r in run] for run in runs[c]] for c in CONFIGS},
    }
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    plot(summary, questions)
    print(
        f"median per question: before {before:.2f} s, after {after:.2f} s "
        f"({after / before:.2f}x), plain llama-cpp-python {plain:.2f} s "
        f"(after/plain {after / plain:.2f}x); same answers {sum(same)}/{len(same)}"
    )
    print(f"wrote {RESULTS} and {PLOT}")
    return 0


def compare_models(names: list[str], runs_wanted: int) -> int:
    """``after`` for each model, interleaved over the rounds; ratios to the first model."""
    runs: dict[str, list[list[dict[str, Any]]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as folder:
        prompts = Path(folder) / "prompts.json"
        for round_ in range(1, runs_wanted + 1):
            for name in names:
                rows = spawn("after", prompts, Path(folder), name)
                runs[name].append(rows)
                times = ", ".join(f"{row['seconds']:.1f}" for row in rows)
                print(f"round {round_}/{runs_wanted} {name}: {times} s", flush=True)
    questions = [row["question"] for row in runs[names[0]][0]]
    summary: dict[str, Any] = {
        name: {
            **medians(runs[name]),
            "calls": [row["calls"] for row in runs[name][0]],
            "answers": [row["answer"] for row in runs[name][0]],
        }
        for name in names
    }
    base = summary[names[0]]["median_s"]
    for name in names:
        summary[name]["median_over_first"] = round(summary[name]["median_s"] / base, 3)
    out = RESULTS.with_name("agent_models.json")
    result = {
        "benchmark": "agent questions (examples/demo.py) per model, call -> result -> answer",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "runs": runs_wanted,
        "questions": questions,
        "summary": summary,
        "all_runs_s": {n: [[r["seconds"] for r in run] for run in runs[n]] for n in names},
    }
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for name in names:
        figures = summary[name]
        print(
            f"{name}: median per question {figures['median_s']:.2f} s "
            f"({figures['median_over_first']:.2f}x {names[0]}), per question "
            + ", ".join(f"{s:.1f}" for s in figures["per_question_median_s"])
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
