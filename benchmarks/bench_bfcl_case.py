"""Time per BFCL case: fncall (constrained; the 0.5B model unless ``--model``) against bare
``llama-cpp-python``.

The same ``--cases`` per category of the five non-live AST categories (seeded sample), case by
case in one process, the two engines interleaved:

- ``fncall``: ``LocalChat`` over ``LlamaCppEngine`` (the model's template, the tool grammar,
  parsing, the judge), what ``fncall eval run`` asks per case, with a plain-text answer stopped
  after ``--text-max-tokens`` (32, as ``benchmarks/eval_full.sh`` runs BFCL: the grammar has
  committed to text, and the score needs only "no call");
- ``plain``: ``Llama.create_chat_completion(messages, tools=...)``, greedy, the same
  ``max_tokens``: what a user of the bare library runs (the GGUF's own template renders the
  tools; no grammar, and the calls are left in the text unparsed), on the same llama.cpp build
  as fncall (native for this CPU where ``make install`` could build it);
- ``portable``: the same ``plain`` requests on ``llama-cpp-python`` as pip builds it (portable
  kernels), in a second process after the first: what ``pip install llama-cpp-python`` gives.

One case (not counted) warms both sides up first. Reports p50 seconds per case, the ratios
fncall/portable (the issue's comparison: fncall's kernels count) and fncall/plain (the same
kernels), and the prompt tokens each side evaluated. The case verdicts are fncall's (the plain
side's calls are not parsed). This is a speed measurement: nothing is chosen on it. Writes
benchmarks/results/bfcl_case.json.
Run: .venv/bin/python benchmarks/bench_bfcl_case.py [--cases 10] [--format NAME] [--model NAME]
[--draft-tokens N] [--judge-question always|unnamed|unsure|after-results] (another format than
the model's writes benchmarks/results/bfcl_case_<format>.json, another model than FAST_MODEL
bfcl_case_<model>.json, drafts bfcl_case_..._draft<N>.json, a judge setting
bfcl_case_..._question-<setting>.json: when the judge asks its question on a first turn,
``fncall.judge.Judge.first_turn_question``). With
``--draft-tokens N`` fncall's engine guesses N tokens a greedy step from the context
(``fncall.engine.speculative``; off by default); the plain sides never draft, so the ratio to the
same build, against a run without the option, is what drafting saves.
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

from tqdm import tqdm

from fncall.engine.prefix_store import turn_off_for_this_process

RESULTS = Path(__file__).parent / "results" / "bfcl_case.json"
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
MAX_TOKENS = 512  # LocalChat's default


def plain_requests(model_path: str, requests_file: Path) -> list[dict[str, Any]]:
    """Run each saved request through bare ``create_chat_completion``; seconds and usage."""
    from llama_cpp import Llama

    from fncall.engine.threads import default_threads

    threads = default_threads()
    plain = Llama(
        model_path=model_path, n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    rows = []
    for request in json.loads(requests_file.read_text()):
        began = time.perf_counter()
        reply = plain.create_chat_completion(**request, temperature=0.0, max_tokens=MAX_TOKENS)
        rows.append({"seconds": time.perf_counter() - began, "usage": reply["usage"]})
    return rows


def portable_requests(model_path: str, requests_file: Path) -> list[dict[str, Any]]:
    """``plain_requests`` in a process that imports pip's portable build."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "scripts"))
    import llama_native

    with tempfile.TemporaryDirectory() as folder:
        llama_native.unpack(llama_native.portable_spec(), Path(folder), portable=True)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")])),
        }
        command = [sys.executable, __file__, "--portable-worker", model_path, str(requests_file)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the portable worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def paired_ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Case by case, fncall's time over each plain side's: the median over all cases and per
    category. The ratio of the p50s compares two different middle cases, and which case is in
    the middle moves from run to run (the categories' times differ by 3x); these pair each case
    with itself, so they move less between runs of the same code."""
    categories = sorted({row["id"].rsplit("_", 1)[0] for row in rows})

    def median(side: str, category: str | None = None) -> float:
        ratios = [
            row["fncall_s"] / row[f"{side}_s"]
            for row in rows
            if category is None or row["id"].rsplit("_", 1)[0] == category
        ]
        return round(statistics.median(ratios), 3)

    return {
        "ratio_per_case_median": median("portable"),
        "ratio_same_build_per_case_median": median("plain"),
        "ratio_same_build_per_case_median_by_category": {c: median("plain", c) for c in categories},
    }


def main() -> int:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    if len(sys.argv) == 4 and sys.argv[1] == "--portable-worker":
        import llama_cpp

        rows = plain_requests(sys.argv[2], Path(sys.argv[3]))
        print(json.dumps([{**row, "library": llama_cpp.__file__} for row in rows]))
        return 0
    from llama_cpp import Llama

    from fncall.cli import FIRST_TURN_QUESTIONS, judge_of
    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.engine.threads import default_threads
    from fncall.evaluate.data import load_cases
    from fncall.evaluate.runner import evaluate_case
    from fncall.models import FAST_MODEL, install_model
    from fncall.pipeline import LocalChat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10, help="per category")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text-max-tokens", type=int, default=32, help="0: no limit")
    parser.add_argument(
        "--format", default="auto", help="fncall's tool-call format (default: the model's)"
    )
    parser.add_argument(
        "--model", default=FAST_MODEL, help=f"a catalogue model (default: {FAST_MODEL})"
    )
    parser.add_argument(
        "--draft-tokens", type=int, default=None, help="fncall's prompt-lookup drafts (default off)"
    )
    parser.add_argument(
        "--judge-question",
        choices=sorted(FIRST_TURN_QUESTIONS),
        default=None,
        help="when the judge asks its question on a first turn (default: the model's setting)",
    )
    args = parser.parse_args()
    if args.cases < 1:
        parser.error(f"--cases must be >= 1, got {args.cases}")
    if args.draft_tokens is not None and args.draft_tokens < 0:
        parser.error(f"--draft-tokens must be >= 0, got {args.draft_tokens}")
    cases = load_cases(CATEGORIES, limit=args.cases, seed=args.seed)
    warm_up = load_cases(("simple_python",), limit=1, seed=args.seed + 1)  # not counted
    cases = warm_up + cases
    path = install_model(args.model, progress=False)
    threads = default_threads()
    engine = LlamaCppEngine(path)
    if args.draft_tokens is not None:
        engine.draft_tokens = args.draft_tokens
    args.judge = "auto"  # the model's judge, with --judge-question folded in as the CLI does
    judge = judge_of(args)
    model = LocalChat(
        engine, format=args.format, text_max_tokens=args.text_max_tokens or None, judge=judge
    )
    plain = Llama(
        model_path=str(path), n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    rows = []
    requests = []
    for number, case in enumerate(tqdm(cases, desc="cases", unit="case")):
        if number == len(warm_up):
            engine.drafted = engine.drafted_dropped = 0  # counted over the timed cases only
        generated = []
        generate = engine.generate

        def record(prompt: str, _log: list = generated, _generate=generate, **kw):  # type: ignore[no-untyped-def]
            out = _generate(prompt, **kw)
            _log.append(out)
            return out

        engine.generate = record  # type: ignore[method-assign]
        result = evaluate_case(model, case)
        engine.generate = generate  # type: ignore[method-assign]
        # A turn the judge refuses is answered again as text: a second generation.
        first = generated[0]
        request = {
            "messages": [m.to_openai() for m in case.messages],
            "tools": [t.to_openai() for t in case.tools],
        }
        requests.append(request)
        began = time.perf_counter()
        reply = plain.create_chat_completion(
            **request,  # type: ignore[arg-type]
            temperature=0.0,
            max_tokens=MAX_TOKENS,
        )
        plain_s = time.perf_counter() - began
        usage = reply["usage"]  # type: ignore[index]
        rows.append(
            {
                "id": case.id,
                "fncall_s": result.latency_s,
                "plain_s": plain_s,
                "fncall_generations": len(generated),
                "fncall_prompt_tokens": first.prompt_tokens,
                "fncall_cached_tokens": first.cached_tokens,
                "fncall_completion_tokens": sum(g.completion_tokens for g in generated),
                "plain_prompt_tokens": usage["prompt_tokens"],
                "plain_completion_tokens": usage["completion_tokens"],
                "fncall_correct": result.verdict.valid,
            }
        )
    plain.close()
    rows = rows[len(warm_up) :]
    with tempfile.TemporaryDirectory() as folder:
        requests_file = Path(folder) / "requests.json"
        requests_file.write_text(json.dumps(requests))
        print("the same requests on pip's portable build ...", flush=True)
        portable = portable_requests(str(path), requests_file)
    for row, other in zip(rows, portable[len(warm_up) :], strict=True):
        row["portable_s"] = other["seconds"]
        row["portable_completion_tokens"] = other["usage"]["completion_tokens"]
    fncall_p50 = statistics.median(r["fncall_s"] for r in rows)
    plain_p50 = statistics.median(r["plain_s"] for r in rows)
    portable_p50 = statistics.median(r["portable_s"] for r in rows)

    def mean(key: str) -> float:
        return round(statistics.fmean(r[key] for r in rows), 1)

    result = {
        "benchmark": f"seconds per BFCL case, fncall vs bare llama-cpp-python, {args.model}",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "cases": len(rows),
        "per_category": args.cases,
        "seed": args.seed,
        "format": model.format.name,
        "draft_tokens": engine.draft_tokens,
        "judge": repr(model.judge),
        "drafted_tokens": engine.drafted,
        "drafted_dropped": engine.drafted_dropped,
        "fncall_p50_s": round(fncall_p50, 3),
        "plain_p50_s": round(plain_p50, 3),
        "portable_p50_s": round(portable_p50, 3),
        "ratio": round(fncall_p50 / portable_p50, 3),
        "ratio_same_build": round(fncall_p50 / plain_p50, 3),
        **paired_ratios(rows),
        "llama_cpp_portable": portable[0]["library"],
        "mean_tokens": {
            key: mean(key)
            for key in (
                "fncall_prompt_tokens",
                "fncall_cached_tokens",
                "fncall_completion_tokens",
                "plain_prompt_tokens",
                "plain_completion_tokens",
                "portable_completion_tokens",
            )
        },
        "fncall_correct": f"{sum(r['fncall_correct'] for r in rows)}/{len(rows)}",
        "rows": rows,
    }
    results = RESULTS
    if args.format != "auto":
        results = results.with_name(f"bfcl_case_{args.format}.json")
    if args.model != FAST_MODEL:
        results = results.with_name(f"{results.stem}_{args.model}.json")
    if args.draft_tokens is not None:
        results = results.with_name(f"{results.stem}_draft{args.draft_tokens}.json")
    if args.judge_question is not None:
        results = results.with_name(f"{results.stem}_question-{args.judge_question}.json")
    results.write_text(json.dumps(result, indent=2) + "\n")
    paired = paired_ratios(rows)
    print(
        f"per case, median of fncall's time over plain's: {paired['ratio_per_case_median']} "
        f"(portable), {paired['ratio_same_build_per_case_median']} (same build)"
    )
    print(
        f"p50 per case: fncall {fncall_p50:.2f} s, plain {plain_p50:.2f} s (same build), "
        f"portable {portable_p50:.2f} s; fncall/portable {fncall_p50 / portable_p50:.2f} "
        f"(goal <= 0.7), fncall/plain {fncall_p50 / plain_p50:.2f}; mean prompt tokens "
        f"{result['mean_tokens']['fncall_prompt_tokens']} vs "
        f"{result['mean_tokens']['plain_prompt_tokens']}; wrote {results}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
