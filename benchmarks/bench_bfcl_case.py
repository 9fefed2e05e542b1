"""Time per BFCL case: fncall (the default model, constrained) against bare ``llama-cpp-python``.

The same ``--cases`` per category of the five non-live AST categories (seeded sample), case by
case in one process, the two engines interleaved:

- ``fncall``: ``LocalChat`` over ``LlamaCppEngine`` (the model's template, the tool grammar,
  parsing), what ``fncall eval run`` asks per case;
- ``plain``: ``Llama.create_chat_completion(messages, tools=...)``, greedy, the same
  ``max_tokens``: what a user of the bare library runs (the GGUF's own template renders the
  tools; no grammar, and the calls are left in the text unparsed).

Reports p50 seconds per case, their ratio, and the prompt tokens each side evaluated. The case
verdicts are fncall's (the plain side's calls are not parsed). This is a speed measurement:
nothing is chosen on it. Writes benchmarks/results/bfcl_case.json.
Run: .venv/bin/python benchmarks/bench_bfcl_case.py [--cases 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from tqdm import tqdm

RESULTS = Path(__file__).parent / "results" / "bfcl_case.json"
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
MAX_TOKENS = 512  # LocalChat's default


def main() -> int:
    from llama_cpp import Llama

    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.engine.threads import default_threads
    from fncall.evaluate.data import load_cases
    from fncall.evaluate.runner import evaluate_case
    from fncall.models import DEFAULT_MODEL, install_model
    from fncall.pipeline import LocalChat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10, help="per category")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.cases < 1:
        parser.error(f"--cases must be >= 1, got {args.cases}")
    cases = load_cases(CATEGORIES, limit=args.cases, seed=args.seed)
    path = install_model(DEFAULT_MODEL, progress=False)
    threads = default_threads()
    engine = LlamaCppEngine(path)
    model = LocalChat(engine)
    plain = Llama(
        model_path=str(path), n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    rows = []
    for case in tqdm(cases, desc="cases", unit="case"):
        generated = []
        generate = engine.generate

        def record(prompt: str, _log: list = generated, _generate=generate, **kw):  # type: ignore[no-untyped-def]
            out = _generate(prompt, **kw)
            _log.append(out)
            return out

        engine.generate = record  # type: ignore[method-assign]
        result = evaluate_case(model, case)
        engine.generate = generate  # type: ignore[method-assign]
        (generation,) = generated
        began = time.perf_counter()
        reply = plain.create_chat_completion(
            messages=[m.to_openai() for m in case.messages],  # type: ignore[misc]
            tools=[t.to_openai() for t in case.tools],  # type: ignore[misc]
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
                "fncall_prompt_tokens": generation.prompt_tokens,
                "fncall_cached_tokens": generation.cached_tokens,
                "fncall_completion_tokens": generation.completion_tokens,
                "plain_prompt_tokens": usage["prompt_tokens"],
                "plain_completion_tokens": usage["completion_tokens"],
                "fncall_correct": result.verdict.valid,
            }
        )
    fncall_p50 = statistics.median(r["fncall_s"] for r in rows)
    plain_p50 = statistics.median(r["plain_s"] for r in rows)

    def mean(key: str) -> float:
        return round(statistics.fmean(r[key] for r in rows), 1)

    result = {
        "benchmark": "seconds per BFCL case, fncall vs bare llama-cpp-python, default model",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "cases": len(rows),
        "per_category": args.cases,
        "seed": args.seed,
        "fncall_p50_s": round(fncall_p50, 3),
        "plain_p50_s": round(plain_p50, 3),
        "ratio": round(fncall_p50 / plain_p50, 3),
        "mean_tokens": {
            key: mean(key)
            for key in (
                "fncall_prompt_tokens",
                "fncall_cached_tokens",
                "fncall_completion_tokens",
                "plain_prompt_tokens",
                "plain_completion_tokens",
            )
        },
        "fncall_correct": f"{sum(r['fncall_correct'] for r in rows)}/{len(rows)}",
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"p50 per case: fncall {fncall_p50:.2f} s, plain {plain_p50:.2f} s, "
        f"ratio {fncall_p50 / plain_p50:.2f} (goal <= 0.7); mean prompt tokens "
        f"{result['mean_tokens']['fncall_prompt_tokens']} vs "
        f"{result['mean_tokens']['plain_prompt_tokens']}; wrote {RESULTS}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
