"""Call or abstain: the judge's threshold, chosen on generated requests (never on BFCL).

Each case is a request generated from the built-in function library (``fncall.train.generate``,
names unmasked): half need a call (simple / multiple / parallel / parallel_multiple), half need
none (an off-topic question, a request for a function that is not offered, or a near miss: the
offered function's own domain, a question it cannot answer). The default model drafts each turn
with the judge off; then every function it called is scored by the judge (``fncall.judge``),
so one run sweeps every threshold:

- *abstained*: requests needing no call whose every drafted call the judge rejects;
- *kept*: requests needing calls whose right functions all pass (none of them dropped);
- *time*: the draft and the judge's scoring, per case.

Cases run in ``--workers`` processes and are appended to a JSONL as they finish, so an interrupted
run resumes where it stopped. Writes benchmarks/results/decision.json and decision.png.
Run: .venv/bin/python benchmarks/bench_decision.py [--cases 160] [--seed 202] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
TEXT_MAX_TOKENS = 32  # only the call-or-not decision is scored
MIX = {"simple": 0.2, "multiple": 0.2, "parallel": 0.05, "parallel_multiple": 0.05, "irrelevance": 0.5}


def _examples(cases: int, seed: int) -> list[Any]:
    from fncall.train.generate import generate_examples

    return generate_examples(cases, seed=seed, mix=MIX, masking_probability=0.0)


def _work(job: tuple[int, int, int, int, str]) -> None:
    """Worker ``part`` of ``parts``: draft and score its share, appending rows to ``path``."""
    part, parts, cases, seed, path = job
    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.judge import Judge
    from fncall.models import DEFAULT_MODEL, install_model
    from fncall.pipeline import LocalChat

    done = {row["i"] for row in _rows(Path(path))}
    engine = LlamaCppEngine(install_model(DEFAULT_MODEL, progress=False))
    chat = LocalChat(engine, judge=None, text_max_tokens=TEXT_MAX_TOKENS)
    judge = Judge(threshold=-math.inf)
    with open(path, "a", encoding="utf-8") as out:
        for i, example in enumerate(_examples(cases, seed)):
            if i % parts != part or i in done:
                continue
            messages, tools = list(example.messages[:-1]), list(example.tools)
            began = time.perf_counter()
            turn = chat.complete(messages, tools)
            draft_s = time.perf_counter() - began
            began = time.perf_counter()
            verdicts = judge.review(
                engine, engine.chat_template, messages[-1].content, turn.tool_calls, tools
            )
            judge_s = time.perf_counter() - began
            expected = sorted({c.name for c in example.messages[-1].tool_calls})
            row = {
                "i": i,
                "kind": example.source,
                "expected": expected,
                "scores": {v.call.name: v.score for v in verdicts},
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
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut by an interruption: that case runs again
    return rows


def outcome(rows: list[dict[str, Any]], threshold: float) -> dict[str, float]:
    """Abstention on requests needing no call and call retention on the others at ``threshold``."""
    irrelevant = [r for r in rows if not r["expected"]]
    fitting = [r for r in rows if r["expected"]]
    abstained = sum(all(s < threshold for s in r["scores"].values()) for r in irrelevant)
    called_right = [r for r in fitting if set(r["expected"]) <= set(r["scores"])]
    kept = sum(all(r["scores"][n] >= threshold for n in r["expected"]) for r in called_right)
    return {
        "threshold": threshold,
        "abstained_pct": 100 * abstained / max(1, len(irrelevant)),
        "kept_pct": 100 * kept / max(1, len(called_right)),
        "balanced_pct": 50 * (abstained / max(1, len(irrelevant)) + kept / max(1, len(called_right))),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=160)
    parser.add_argument("--seed", type=int, default=202)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.cases < 2 or args.workers < 1:
        parser.error("--cases must be >= 2 and --workers >= 1")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"decision_rows_seed{args.seed}_{args.cases}.jsonl"
    os.environ.setdefault("FNCALL_THREADS", str(max(1, (os.cpu_count() or 1) // args.workers)))
    jobs = [(p, args.workers, args.cases, args.seed, str(path)) for p in range(args.workers)]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        pool.map(_work, jobs)
    rows = sorted(_rows(path), key=lambda r: r["i"])
    if len({r["i"] for r in rows}) != args.cases:
        print(f"only {len(rows)} of {args.cases} cases finished; run again to resume", file=sys.stderr)
        return 1
    from fncall.judge import DEFAULT_THRESHOLD

    sweep = [outcome(rows, t / 20) for t in range(-10, 41)]
    default = outcome(rows, DEFAULT_THRESHOLD)
    base = outcome(rows, -math.inf)
    best = max(sweep, key=lambda o: o["balanced_pct"])
    summary = {
        "cases": len(rows),
        "irrelevant": sum(not r["expected"] for r in rows),
        "without_judge": base,
        "default_threshold": default,
        "best_balanced": best,
        "draft_p50_s": statistics.median(r["draft_s"] for r in rows),
        "judge_p50_s": statistics.median(r["judge_s"] for r in rows if r["scores"]),
    }
    report = {
        "benchmark": "decision: the judge's threshold on generated requests",
        "seed": args.seed,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "summary": summary,
        "sweep": sweep,
    }
    (RESULTS / "decision.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _plot(sweep, default, RESULTS / "decision.png")
    print(json.dumps(summary, indent=2))
    return 0


def _plot(sweep: list[dict[str, float]], default: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot([o["kept_pct"] for o in sweep], [o["abstained_pct"] for o in sweep], marker=".")
    ax.scatter([default["kept_pct"]], [default["abstained_pct"]], color="red", zorder=3,
               label=f"default threshold {default['threshold']}")
    ax.set_xlabel("requests needing calls: right functions kept (%)")
    ax.set_ylabel("requests needing no call: abstained (%)")
    ax.set_title("The judge's trade-off (generated requests)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
