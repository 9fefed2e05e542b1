"""Constrained-decoding benchmark: grammar compile time and per-token mask time.

    .venv/bin/python benchmarks/bench_constrain.py [--gguf PATH] [--compare] [--runs 5]

Uses the default model's real vocabulary (Qwen2.5, ~151k tokens): from the llama.cpp engine when
llama-cpp-python is installed, else read from the GGUF with the ``gguf`` package. ``--gguf``
may point at any Qwen2 GGUF (a vocabulary-only one is enough). Medians of ``--runs`` runs go to
``benchmarks/results/constrain.json``. ``--compare`` also times xgrammar on the same task when it
is importable. When the engine and the model are both available it adds decode speed, plain vs
constrained tool-call generation.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from fncall.constrain import build_constraint, clear_cache
from fncall.constrain.llguidance_backend import llg_tokenizer
from fncall.engine.prefix_store import turn_off_for_this_process
from fncall.formats import get_format
from fncall.types import Tool

JSON = get_format("json")  # the syntax the mask and decode figures use

RESULTS = Path(__file__).parent / "results" / "constrain.json"
SAMPLE_CALL = '[{"name": "tool_3", "arguments": {"city": "Paris", "unit": "celsius", "days": 3}}]'


def make_tools(count: int) -> list[Tool]:
    return [
        Tool(
            name=f"tool_{i}",
            parameters={
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "a city"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer", "minimum": 1, "maximum": 14},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
                    "options": {
                        "type": "object",
                        "properties": {"lang": {"type": ["string", "null"]}},
                    },
                },
                "required": ["city"],
            },
        )
        for i in range(count)
    ]


def _byte_decoder() -> dict[str, int]:
    """GPT-2 byte-level BPE: printable stand-ins back to bytes."""
    keep = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars, strict=True)}


def vocabulary_from_gguf(path: Path) -> tuple[list[bytes], list[int]]:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    tokens = reader.fields["tokenizer.ggml.tokens"]
    kinds = reader.fields["tokenizer.ggml.token_type"]
    decoder = _byte_decoder()
    vocabulary = []
    for index, kind_index in zip(tokens.data, kinds.data, strict=True):
        text = bytes(tokens.parts[index]).decode("utf-8")
        normal = int(kinds.parts[kind_index][0]) == 1
        vocabulary.append(bytes(decoder[c] for c in text) if normal else text.encode("utf-8"))
    eos = [i for i, piece in enumerate(vocabulary) if piece in (b"<|im_end|>", b"<|endoftext|>")]
    return vocabulary, eos


def load_vocabulary(gguf: Path | None) -> tuple[list[bytes], list[int], str, Any, Path]:
    """(vocabulary, eos ids, source, engine or None, GGUF path)."""
    path = gguf
    if path is None:
        from fncall import models

        if not models.is_installed("qwen2.5-coder-0.5b"):
            raise SystemExit("qwen2.5-coder-0.5b is not installed; pass --gguf PATH (a Qwen2 GGUF)")
        path = models.model_path("qwen2.5-coder-0.5b")
    try:
        from fncall.engine.llama_cpp import LlamaCppEngine

        engine = LlamaCppEngine(path, n_ctx=1024)
        source = f"llama.cpp:{path.name}"
        return engine.vocabulary(), sorted(engine.eos_token_ids), source, engine, path
    except Exception as exc:  # no llama-cpp-python, or a vocabulary-only GGUF
        print(f"(engine unavailable: {type(exc).__name__}; reading the GGUF with gguf)")
    vocabulary, eos = vocabulary_from_gguf(path)
    return vocabulary, eos, f"gguf:{path.name}", None, path


def timed(function: Any, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_compile(
    vocabulary: list[bytes], eos: list[int], runs: int, syntax: Any = JSON
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for count in (1, 16, 128):
        tools = make_tools(count)

        def cold(tools: list[Tool] = tools) -> None:
            clear_cache()
            constraint = build_constraint(tools, tool_choice="auto", syntax=syntax)
            assert constraint is not None
            constraint.matcher(vocabulary, eos)  # compiles against the 151k-token tokenizer

        def cached(tools: list[Tool] = tools) -> None:
            constraint = build_constraint(tools, tool_choice="auto", syntax=syntax)
            assert constraint is not None
            constraint.matcher(vocabulary, eos)

        out[f"{count}_tools"] = {
            "cold_ms": timed(cold, runs) * 1e3,
            "cached_ms": timed(cached, runs) * 1e3,
        }
    return out


def bench_mask(vocabulary: list[bytes], eos: list[int], runs: int) -> dict[str, Any]:
    tokenizer = llg_tokenizer(vocabulary, eos)
    ids = tokenizer.tokenize_str(SAMPLE_CALL)
    per_token, first, apply = [], [], []
    for _ in range(runs):
        constraint = build_constraint(make_tools(16), tool_choice="auto", syntax=JSON)
        assert constraint is not None
        matcher = constraint.matcher(vocabulary, eos)
        logits = np.zeros(len(vocabulary), dtype=np.float32)
        steps = []
        for token in ids:
            start = time.perf_counter()
            matcher.mask_logits(logits)
            steps.append(time.perf_counter() - start)
            matcher.advance(token)
        first.append(steps[0])
        per_token.append(statistics.median(steps))
        start = time.perf_counter()
        allowed = matcher.allowed_tokens()
        for _ in range(50):
            np.putmask(logits, ~allowed, -np.inf)
        apply.append((time.perf_counter() - start) / 50)
    return {
        "tokens": len(ids),
        "median_mask_ms": statistics.median(per_token) * 1e3,
        "first_token_mask_ms": statistics.median(first) * 1e3,
        "apply_only_ms": statistics.median(apply) * 1e3,
    }


def bench_xgrammar(vocabulary: list[bytes], eos: list[int], runs: int) -> dict[str, Any] | None:
    try:
        import torch
        import xgrammar as xgr
    except ImportError as exc:
        print(f"(xgrammar unavailable: {exc})")
        return None
    start = time.perf_counter()
    info = xgr.TokenizerInfo(vocabulary, vocab_type=xgr.VocabType.RAW, stop_token_ids=eos)
    tokenizer_s = time.perf_counter() - start
    out: dict[str, Any] = {"tokenizer_build_ms": tokenizer_s * 1e3}
    for count in (1, 16, 128):
        text = json.dumps(calls_schema(make_tools(count)))

        def compile_cold(text: str = text) -> Any:
            return xgr.GrammarCompiler(
                info, max_threads=1, cache_enabled=False
            ).compile_json_schema(text, any_whitespace=False)

        out[f"{count}_tools_cold_ms"] = timed(compile_cold, runs) * 1e3
    compiled = compile_cold(json.dumps(calls_schema(make_tools(16))))
    matcher = xgr.GrammarMatcher(compiled)
    bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
    logits = torch.zeros(1, len(vocabulary))
    steps = []
    for token in llg_tokenizer(vocabulary, eos).tokenize_str(
        SAMPLE_CALL.replace(", ", ",").replace(": ", ":")
    ):
        start = time.perf_counter()
        matcher.fill_next_token_bitmask(bitmask)
        xgr.apply_token_bitmask_inplace(logits, bitmask)
        steps.append(time.perf_counter() - start)
        if not matcher.accept_token(token):
            break
    out["median_mask_ms"] = statistics.median(steps) * 1e3
    out["first_token_mask_ms"] = steps[0] * 1e3
    return out


def calls_schema(tools: list[Tool]) -> dict[str, Any]:
    """The same task as one JSON Schema (for backends without a Lark front end)."""
    return {
        "type": "array",
        "minItems": 1,
        "items": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"name": {"const": t.name}, "arguments": dict(t.parameters)},
                    "required": ["name", "arguments"],
                    "additionalProperties": False,
                }
                for t in tools
            ]
        },
    }


def bench_gbnf(path: Path, runs: int) -> dict[str, Any] | None:
    """llama.cpp's own grammar: compile time, and decode speed with vs without it."""
    try:
        import llama_cpp
    except ImportError as exc:
        print(f"(llama.cpp GBNF unavailable: {exc})")
        return None
    out: dict[str, Any] = {}
    for count in (1, 16, 128):
        text = json.dumps(calls_schema(make_tools(count)))
        out[f"{count}_tools_cold_ms"] = (
            timed(
                lambda text=text: llama_cpp.LlamaGrammar.from_json_schema(text, verbose=False), runs
            )
            * 1e3
        )
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=1024, verbose=False)
    grammar = llama_cpp.LlamaGrammar.from_json_schema(
        json.dumps(calls_schema(make_tools(16))), verbose=False
    )
    for label, used in (("plain", None), ("gbnf", grammar)):
        rates = []
        for _ in range(3):
            start = time.perf_counter()
            result = llm.create_completion(
                DECODE_PROMPT, max_tokens=64, temperature=0.0, grammar=used
            )
            rates.append(result["usage"]["completion_tokens"] / (time.perf_counter() - start))
        out[f"{label}_tok_s"] = statistics.median(rates)
    out["overhead_ratio"] = out["plain_tok_s"] / out["gbnf_tok_s"]
    return out


DECODE_PROMPT = (
    "<|im_start|>user\nCall tool_3 for Paris in celsius for 3 days. Answer with a JSON "
    "list of calls.<|im_end|>\n<|im_start|>assistant\n"
)


def bench_decode(engine: Any, runs: int) -> dict[str, Any]:
    """Plain vs constrained generation of the same call with the real model: tokens per second
    (forced tokens count as generated: fast-forwarding them is part of the win)."""
    tools = make_tools(16)
    constraint = build_constraint(tools, tool_choice="required", syntax=JSON)
    prompt = (
        "<|im_start|>user\nCall tool_3 for Paris in celsius for 3 days. Answer with a JSON "
        "list of calls.<|im_end|>\n<|im_start|>assistant\n"
    )
    options = {"plain": None, "constrained": constraint}
    rates: dict[str, list[float]] = {label: [] for label in options}
    texts: dict[str, str] = {}
    for used in options.values():
        engine.generate(prompt, max_tokens=8, constraint=used)  # warm the prompt cache
    for _ in range(runs):  # interleaved, so both see the same machine load
        for label, used in options.items():
            generation = engine.generate(prompt, max_tokens=64, constraint=used)
            rates[label].append(generation.completion_tokens / max(generation.seconds, 1e-9))
            texts[label] = generation.text
    result: dict[str, Any] = {f"{label}_tok_s": statistics.median(r) for label, r in rates.items()}
    result["overhead_ratio"] = result["plain_tok_s"] / result["constrained_tok_s"]
    result["goal_ratio"] = 1.05
    result["texts"] = texts
    return result


def main() -> None:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, help="a Qwen2 GGUF to take the vocabulary from")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare", action="store_true", help="also time xgrammar")
    args = parser.parse_args()

    start = time.perf_counter()
    vocabulary, eos, source, engine, path = load_vocabulary(args.gguf)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    llg_tokenizer(vocabulary, eos)
    results: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "vocabulary": {
            "source": source,
            "size": len(vocabulary),
            "load_s": load_s,
            "llguidance_tokenizer_s": time.perf_counter() - start,
        },
        "runs": args.runs,
        "llguidance": {
            "compile": bench_compile(vocabulary, eos, args.runs),
            # The default model's default format (``format="auto"``) since session 13.
            "compile_pythonic": bench_compile(
                vocabulary, eos, args.runs, syntax=get_format("pythonic")
            ),
            "mask": bench_mask(vocabulary, eos, args.runs),
        },
    }
    if args.compare:
        results["xgrammar"] = bench_xgrammar(vocabulary, eos, args.runs)
        if engine is not None:  # needs a full model, not a vocabulary-only GGUF
            results["llama_cpp_gbnf"] = bench_gbnf(path, args.runs)
    if engine is not None:
        results["decode"] = bench_decode(engine, args.runs)
    else:
        results["decode"] = "skipped: needs llama-cpp-python and the installed default model"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
