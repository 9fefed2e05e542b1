"""The server on the real 0.5B model (FAST_MODEL): 8 streaming clients at once, time to first token.

Two workloads, each with the saved-prefix cache on (as shipped) and off (``prefix_cache_mb=0``)
in the same run:

- ``shared``: every client sends the demo's tools (examples/demo.py) with its own questions;
- ``distinct``: each client has a tool set of its own (the demo's tools renamed and described
  for that client), so eight tool prefixes take turns on the one llama.cpp context.

A request is a streamed chat completion the client runs its tools for itself (the server hands
the calls back). Time to first token is when the first chunk carrying content or a call arrives;
the server sends a call whole, once its arguments are complete, so for a call this is close to
the whole turn. One engine serves the requests one at a time, so p99 includes the wait behind
the other seven. Then memory: the process's peak RSS after filling the prefix cache to its
bound with further tool sets, against its RSS once the model was loaded.
Writes benchmarks/results/serve_model.json.
Run: .venv/bin/python benchmarks/bench_serve_model.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
from bench_serve import quantile, run_clients

from fncall.engine.prefix_store import turn_off_for_this_process

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "serve_model.json"
sys.path.insert(0, str(HERE.parent / "examples"))
CLIENTS = 8
QUESTIONS = [
    "What's the weather in {city}?",
    "How much is {n} US dollars in euros?",
    "How many miles is {n} km?",
    "Convert {n} kg to pounds.",
]
CITIES = ["Paris", "Tokyo", "Oslo", "Lima", "Cairo", "Quito", "Perth", "Riga"]


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tool_set(client: int | None) -> list[dict[str, Any]]:
    from demo import TOOLS

    tools = [tool.to_openai() for tool in TOOLS.tools]
    if client is None:
        return tools
    for tool in tools:
        function = tool["function"]
        function["name"] = f"desk{client}_{function['name']}"
        function["description"] = f"(Service desk {client}.) {function['description']}"
    return tools


def first_token(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and line.startswith("data: {"):
                for choice in json.loads(line[6:]).get("choices", []):
                    delta = choice.get("delta") or {}
                    if delta.get("content") or delta.get("tool_calls"):
                        first = time.perf_counter() - started
    total = time.perf_counter() - started
    return (first if first is not None else total), total


def workload(base_url: str, *, distinct: bool, rounds: int) -> dict[str, Any]:
    url = base_url + "/v1/chat/completions"

    def request(http: httpx.Client, c: int, r: int) -> tuple[float, float]:
        question = QUESTIONS[(c + r) % len(QUESTIONS)].format(city=CITIES[c], n=10 * (c + 1) + r)
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": question}],
            "tools": tool_set(c if distinct else None),
            "stream": True,
            "max_tokens": 64,
        }
        return first_token(http, url, body)

    timings, errors, wall = run_clients(CLIENTS, rounds, request)
    firsts = [first for first, _ in timings]
    return {
        "requests": len(timings),
        "errors": errors[:5],
        "ttft_p50_s": round(quantile(firsts, 0.5), 3),
        "ttft_p99_s": round(quantile(firsts, 0.99), 3),
        "total_p50_s": round(quantile([total for _, total in timings], 0.5), 3),
        "wall_s": round(wall, 2),
    }


def main() -> int:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.models import FAST_MODEL, install_model
    from fncall.pipeline import LocalChat
    from fncall.serve import create_app
    from fncall.serve.testing import BackgroundServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="requests per client")
    args = parser.parse_args()
    path = install_model(FAST_MODEL, progress=False)
    results: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    for cache in ("on", "off"):
        engine = LlamaCppEngine(path, **({} if cache == "on" else {"prefix_cache_mb": 0}))
        loaded = rss_mb("VmRSS")
        app = create_app(LocalChat(engine, max_tokens=64), model_name="m", max_waiting=64)
        with BackgroundServer(app) as server:
            for name in ("shared", "distinct"):
                run = workload(server.base_url, distinct=name == "distinct", rounds=args.rounds)
                results[f"{name}_cache_{cache}"] = run
                print(
                    f"{name:>8}, cache {cache:>3}: time to first token p50 {run['ttft_p50_s']} s, "
                    f"p99 {run['ttft_p99_s']} s; {run['requests']} requests in {run['wall_s']} s"
                    + (f"; errors {run['errors']}" if run["errors"] else ""),
                    flush=True,
                )
            if cache == "on":
                client = 100
                with httpx.Client(timeout=600) as http:
                    while engine.prefix_cache.nbytes < 0.9 * engine.prefix_cache.max_bytes:
                        body = {
                            "model": "m",
                            "messages": [{"role": "user", "content": "Weather in Rome?"}],
                            "tools": tool_set(client),
                            "max_tokens": 1,
                        }
                        http.post(server.base_url + "/v1/chat/completions", json=body)
                        client += 1
                memory = {
                    "rss_after_load_mb": round(loaded, 1),
                    "peak_rss_cache_full_mb": round(rss_mb("VmHWM"), 1),
                    "prefix_cache_mb": round(engine.prefix_cache.nbytes / 2**20, 1),
                    "prefix_cache_bound_mb": round(engine.prefix_cache.max_bytes / 2**20, 1),
                    "saved_states": len(engine.prefix_cache),
                }
                print(f"memory: {memory}", flush=True)
        engine.close()
    out = {
        "benchmark": "server on the 0.5B model (FAST_MODEL), 8 streaming clients",
        "machine": platform.platform(),
        "rounds": args.rounds,
        "results": results,
        "memory": memory,
    }
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
