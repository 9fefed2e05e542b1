"""Engine benchmark on the 0.5B model (FAST_MODEL): decode vs bare llama-cpp-python, prefix cache.

(a) fncall's LlamaCppEngine against ``Llama.create_completion`` on the same prompt, both greedy
    and producing the same tokens: the ratio of tokens per second (goal: >= 0.95).
(b) Prefix cache: the latency of a request sharing a long tool-definition prefix with the one
    before it, and of one whose prefix comes back from a saved state after another prompt
    replaced it, against the same request with nothing cached.

Medians of several runs. Writes benchmarks/results/engine.json.
Run: .venv/bin/python benchmarks/bench_engine.py [--runs N] [--tokens N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from fncall.engine.llama_cpp import LlamaCppEngine
from fncall.engine.prefix_store import turn_off_for_this_process
from fncall.engine.threads import default_threads
from fncall.models import FAST_MODEL, install_model

RESULTS = Path(__file__).parent / "results" / "engine.json"

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": f"tool_{i}_{verb}",
            "description": f"{verb.capitalize()} a record in table number {i} of the inventory.",
            "parameters": {
                "type": "object",
                "properties": {
                    "record_id": {"type": "integer", "description": "the record to act on"},
                    "reason": {"type": "string", "description": "why, for the audit log"},
                    "dry_run": {"type": "boolean", "description": "only report what changes"},
                },
                "required": ["record_id"],
            },
        },
    }
    for i in range(4)
    for verb in ("create", "update")
]


def chat(question: str, system: str = "You are a helpful assistant.") -> str:
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n"
        f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    )


def bench_decode(path: Path, runs: int, tokens: int, threads: int) -> dict[str, object]:
    from llama_cpp import Llama

    prompt = chat("Count from 1 to 500, separated by commas, with nothing else.")
    engine = LlamaCppEngine(path, n_ctx=2048, n_threads=threads)
    bare = Llama(
        model_path=str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    ours_rates, bare_rates = [], []
    ours_text = bare_text = ""
    for _ in range(runs + 1):  # the first round warms both prompt caches and is dropped
        out = engine.generate(prompt, max_tokens=tokens)
        ours_rates.append(out.completion_tokens / out.seconds)
        ours_text = out.text
        started = time.perf_counter()
        result: Any = bare.create_completion(prompt, max_tokens=tokens, temperature=0.0)
        seconds = time.perf_counter() - started
        bare_rates.append(result["usage"]["completion_tokens"] / seconds)
        bare_text = result["choices"][0]["text"]
    ours, theirs = statistics.median(ours_rates[1:]), statistics.median(bare_rates[1:])
    engine.close()
    bare.close()
    return {
        "tokens": tokens,
        "fncall_tokens_per_s": round(ours, 2),
        "llama_cpp_python_tokens_per_s": round(theirs, 2),
        "ratio": round(ours / theirs, 3),
        "goal_ratio": 0.95,
        "same_text": ours_text == bare_text,
    }


def bench_prefix_cache(path: Path, runs: int, threads: int) -> dict[str, object]:
    """A request sharing a tool prefix: evaluated cold, continued from the live context, and
    restored from a saved state after another prompt replaced the context."""
    system = "You may call these tools. Answer with a JSON tool call.\n" + json.dumps(TOOLS)
    questions = ["Delete record 7 from table 3.", "Update record 12 in table 5, dry run."]
    engine = LlamaCppEngine(path, n_ctx=4096, n_threads=threads)
    cold, warm, restored = [], [], []
    cached = restored_tokens = prompt_tokens = 0
    unrelated = "An unrelated prompt that shares no prefix. " * 8
    for _ in range(max(1, min(runs, 3))):  # a cold request is slow: three are enough
        engine.generate(unrelated, max_tokens=1)
        engine.prefix_cache.clear()  # after: the unrelated prompt saved what it replaced
        first = engine.generate(chat(questions[0], system), max_tokens=8)
        second = engine.generate(chat(questions[1], system), max_tokens=8)
        engine.generate(unrelated, max_tokens=1)  # replaces the context; the prefix is saved
        third = engine.generate(chat(questions[0], system), max_tokens=8)
        cold.append(first.seconds)
        warm.append(second.seconds)
        restored.append(third.seconds)
        cached, prompt_tokens = second.cached_tokens, second.prompt_tokens
        restored_tokens = third.cached_tokens
    engine.close()
    cold_s, warm_s, restored_s = (statistics.median(v) for v in (cold, warm, restored))
    return {
        "prompt_tokens": prompt_tokens,
        "cached_tokens": cached,
        "restored_cached_tokens": restored_tokens,
        "generated_tokens": 8,
        "first_request_s": round(cold_s, 3),
        "second_request_s": round(warm_s, 3),
        "restored_request_s": round(restored_s, 3),
        "speedup": round(cold_s / warm_s, 2),
        "restored_speedup": round(cold_s / restored_s, 2),
    }


def main() -> None:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()
    path = install_model(FAST_MODEL)
    results = {
        "model": FAST_MODEL,
        "threads": args.threads,
        "runs": args.runs,
        "machine": platform.processor() or platform.machine(),
        "load_average_before": round(os.getloadavg()[0], 2),
        "decode_vs_llama_cpp_python": bench_decode(path, args.runs, args.tokens, args.threads),
        "prefix_cache": bench_prefix_cache(path, args.runs, args.threads),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
