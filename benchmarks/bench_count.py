"""How many calls: the call-count threshold, chosen on generated requests (never on BFCL).

Each case is a request generated from the built-in function library (``fncall.train.generate``,
names unmasked) that needs one call or several (simple / multiple / parallel /
parallel_multiple, a quarter each). The 0.5B (FAST_MODEL) drafts each case under every setting of
``--settings`` (judge off, constrained): a format and a call-count threshold
(``fncall.constrain.call_count``; ``greedy`` is no threshold: the list ends where greedy decoding
ends it). Per setting: drafts with too few / the right number / too many calls, drafts exactly
right (names and arguments, any order), and the time per draft.

Cases run in ``--workers`` processes and are appended to a JSONL as they finish, so an interrupted
run resumes where it stopped. Writes benchmarks/results/count.json and count.png.
Run: .venv/bin/python benchmarks/bench_count.py [--cases 80] [--seed 404] [--workers 2]
     [--settings json:-3,pythonic:1,pythonic:1:2/2] [--name count]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from fncall.engine.prefix_store import turn_off_for_this_process

RESULTS = Path(__file__).parent / "results"
MIX = {"simple": 0.25, "multiple": 0.25, "parallel": 0.25, "parallel_multiple": 0.25}
SETTINGS = ("json:greedy", "json:-1", "json:-2", "json:-3", "pythonic:greedy", "pythonic:-2")


def _examples(cases: int, seed: int) -> list[Any]:
    from fncall.train.generate import generate_examples

    return generate_examples(cases, seed=seed, mix=MIX, masking_probability=0.0)


def _setting(text: str) -> tuple[str, float | None, tuple[float, float] | None]:
    """``FORMAT:THRESHOLD[:MORE/FEWER]``: the format, the threshold (``greedy``: none) and the
    coverage's two amounts (``fncall.constrain.call_count.Coverage``; none when left out)."""
    name, _, rest = text.partition(":")
    threshold, _, coverage = rest.partition(":")
    cover = None
    if coverage:
        more, _, fewer = coverage.partition("/")
        cover = (float(more), float(fewer))
    return name, None if threshold == "greedy" else float(threshold), cover


def _work(job: tuple[int, int, int, int, str, tuple[str, ...]]) -> None:
    part, parts, cases, seed, path, settings = job
    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.models import FAST_MODEL, install_model
    from fncall.pipeline import LocalChat

    done = {(row["i"], row["setting"]) for row in _rows(Path(path))}
    todo = [(i, s) for i in range(part, cases, parts) for s in settings if (i, s) not in done]
    if not todo:
        return
    engine = LlamaCppEngine(install_model(FAST_MODEL, progress=False))
    chats = {}
    for setting in settings:
        name, threshold, coverage = _setting(setting)
        chats[setting] = LocalChat(
            engine, format=name, judge=None, count_threshold=threshold, count_coverage=coverage
        )
    examples = _examples(cases, seed)
    with open(path, "a", encoding="utf-8") as out:
        for i, setting in todo:
            example = examples[i]
            began = time.perf_counter()
            turn = chats[setting].complete(list(example.messages[:-1]), list(example.tools))
            expected = example.messages[-1].tool_calls
            want = sorted(json.dumps([c.name, dict(c.arguments)], sort_keys=True) for c in expected)
            got = sorted(
                json.dumps([c.name, dict(c.arguments)], sort_keys=True) for c in turn.tool_calls
            )
            row = {
                "i": i,
                "setting": setting,
                "kind": example.source.removeprefix("generated:"),
                "expected": len(expected),
                "made": len(turn.tool_calls),
                "right": want == got,
                "draft_s": round(time.perf_counter() - began, 3),
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


def tally(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = max(1, len(rows))
    return {
        "cases": len(rows),
        "too_few_pct": 100 * sum(r["made"] < r["expected"] for r in rows) / n,
        "right_count_pct": 100 * sum(r["made"] == r["expected"] for r in rows) / n,
        "too_many_pct": 100 * sum(r["made"] > r["expected"] for r in rows) / n,
        "right_pct": 100 * sum(r["right"] for r in rows) / n,
        "draft_p50_s": statistics.median(r["draft_s"] for r in rows) if rows else 0.0,
    }


def main() -> int:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=80)
    parser.add_argument("--seed", type=int, default=404)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--settings",
        default=",".join(SETTINGS),
        help="FORMAT:THRESHOLD or FORMAT:greedy, optionally :MORE/FEWER (the coverage), "
        "comma-separated",
    )
    parser.add_argument(
        "--name", default="count", help="summary and chart file names (default count: count.json)"
    )
    args = parser.parse_args()
    settings = tuple(s.strip() for s in args.settings.split(",") if s.strip())
    try:
        for setting in settings:
            name, _, _ = _setting(setting)
            if name not in ("json", "pythonic"):
                raise ValueError(name)
    except ValueError as exc:
        parser.error(f"--settings: {exc}; give FORMAT:THRESHOLD or FORMAT:greedy (json, pythonic)")
    if args.cases < 2 or args.workers < 1 or not settings:
        parser.error("--cases must be >= 2, --workers >= 1, and one setting at least")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"count_rows_seed{args.seed}_{args.cases}.jsonl"
    os.environ.setdefault("FNCALL_THREADS", str(max(1, (os.cpu_count() or 1) // args.workers)))
    jobs = [
        (p, args.workers, args.cases, args.seed, str(path), settings) for p in range(args.workers)
    ]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        pool.map(_work, jobs)
    rows = [r for r in _rows(path) if r["setting"] in settings]
    finished = {(r["i"], r["setting"]) for r in rows}
    if len(finished) != args.cases * len(settings):
        print(
            f"only {len(finished)} of {args.cases * len(settings)} drafts finished; run again "
            "to resume",
            file=sys.stderr,
        )
        return 1
    summary = {}
    for setting in settings:
        mine = [r for r in rows if r["setting"] == setting]
        summary[setting] = {
            **tally(mine),
            "by_kind": {
                k: tally([r for r in mine if r["kind"] == k])
                for k in sorted({r["kind"] for r in mine})
            },
        }
    report = {
        "benchmark": "count: call-count threshold on generated requests",
        "seed": args.seed,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "summary": summary,
    }
    (RESULTS / f"{args.name}.json").write_text(
        json.dumps(report, indent=2) + "\n", encoding="utf-8"
    )
    _plot(summary, RESULTS / f"{args.name}.png")
    for setting, figures in summary.items():
        kinds = " ".join(f"{k}={v['right_pct']:.0f}" for k, v in figures["by_kind"].items())
        print(
            f"{setting:16} right {figures['right_pct']:5.1f}  count right "
            f"{figures['right_count_pct']:5.1f} (few {figures['too_few_pct']:.0f}, many "
            f"{figures['too_many_pct']:.0f})  p50 {figures['draft_p50_s']:.1f} s  {kinds}"
        )
    return 0


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted({k for figures in summary.values() for k in figures["by_kind"]})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(1, len(summary))
    for n, (setting, figures) in enumerate(summary.items()):
        xs = [k + n * width for k in range(len(kinds))]
        axes[0].bar(xs, [figures["by_kind"][k]["right_pct"] for k in kinds], width, label=setting)
    axes[0].set_xticks([k + 0.4 - width / 2 for k in range(len(kinds))], kinds)
    axes[0].set_ylabel("drafts exactly right (%)")
    axes[0].set_title("by kind")
    axes[0].legend(fontsize=8)
    names = list(summary)
    few = [summary[s]["too_few_pct"] for s in names]
    right = [summary[s]["right_count_pct"] for s in names]
    many = [summary[s]["too_many_pct"] for s in names]
    axes[1].barh(names, few, label="too few", color="#d62728")
    axes[1].barh(names, right, left=few, label="right count", color="#2ca02c")
    axes[1].barh(
        names,
        many,
        left=[a + b for a, b in zip(few, right, strict=True)],
        label="too many",
        color="#ff7f0e",
    )
    axes[1].set_xlabel("% of drafts")
    axes[1].set_title("call counts")
    axes[1].legend(fontsize=8)
    fig.suptitle("How many calls: generated requests, qwen2.5-coder-0.5b")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
