"""llama.cpp kernels: the portable build against the native one (scripts/llama_native.py), in
one run, on the 0.5B model (FAST_MODEL): prompt and decode tokens per second, at 1 and 2 threads.

Each build is unpacked into its own folder and measured in its own process (a process can load
one ``libllama``); builds and thread counts are interleaved over ``--runs`` rounds and the
medians kept. The portable wheel comes from pip's cache (``GGML_NATIVE=OFF``, as ``make install``
builds it), the native one from ``$FNCALL_HOME/llama-native/``.
Writes benchmarks/results/kernels.json.
Run: .venv/bin/python benchmarks/bench_kernels.py [--runs 3]
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
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "kernels.json"
sys.path.insert(0, str(HERE.parent / "scripts"))

PROBE = """
import json, sys, time, llama_cpp
path, threads = sys.argv[1], int(sys.argv[2])
llm = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=threads,
                      verbose=False)
prompt = llm.tokenize(b"Describe the tools of a careful function-calling agent. " * 40)[:450]
llm.eval(prompt[:8]); llm.reset()  # warm up
began = time.perf_counter(); llm.eval(prompt); prompt_s = time.perf_counter() - began
began = time.perf_counter()
for token in prompt[:32]:
    llm.eval([token])
decode_s = time.perf_counter() - began
print(json.dumps({"prompt_tok_s": len(prompt) / prompt_s, "decode_tok_s": 32 / decode_s,
                  "library": llama_cpp.__file__}))
"""


def probe(folder: Path, model: Path, threads: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(model), str(threads)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"probe failed in {folder}: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["library"].startswith(str(folder)), result["library"]
    return result


def main() -> int:
    import llama_native

    from fncall.models import FAST_MODEL, install_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    version = metadata.version("llama-cpp-python")
    options = llama_native.cmake_args(llama_native.cpu_flags())
    wheels = sorted(llama_native.build_dir(version, options).glob("*.whl"))
    if not wheels:
        raise SystemExit("no native build yet: run .venv/bin/python scripts/llama_native.py")
    model = install_model(FAST_MODEL, progress=False)
    samples: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folders = {"portable": Path(scratch) / "portable", "native": Path(scratch) / "native"}
        llama_native.unpack(llama_native.portable_spec(), folders["portable"], portable=True)
        llama_native.unpack(str(wheels[-1]), folders["native"])
        for round_ in range(1, args.runs + 1):
            for threads in (1, 2):
                for build, folder in folders.items():
                    result = probe(folder, model, threads)
                    samples.setdefault(f"{build}_{threads}t", []).append(result)
                    print(
                        f"round {round_} {build:>8} {threads}t: prompt "
                        f"{result['prompt_tok_s']:.0f} tok/s, decode {result['decode_tok_s']:.1f}",
                        flush=True,
                    )
    summary = {
        key: {
            "prompt_tok_s": round(statistics.median(r["prompt_tok_s"] for r in runs), 1),
            "decode_tok_s": round(statistics.median(r["decode_tok_s"] for r in runs), 1),
        }
        for key, runs in samples.items()
    }
    ratios = {
        f"{threads}t": {
            kind: round(
                summary[f"native_{threads}t"][kind] / summary[f"portable_{threads}t"][kind], 3
            )
            for kind in ("prompt_tok_s", "decode_tok_s")
        }
        for threads in (1, 2)
    }
    result = {
        "benchmark": "llama.cpp kernels, portable vs native build, qwen2.5-coder-0.5b",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "native_options": options,
        "runs": args.runs,
        "median": summary,
        "native_over_portable": ratios,
        "all": {key: [{k: round(v, 1) for k, v in r.items() if k != "library"} for r in runs]
                for key, runs in samples.items()},
    }  # fmt: skip
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"median": summary, "native_over_portable": ratios}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
