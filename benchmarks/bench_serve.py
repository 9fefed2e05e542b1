"""Server load test: 8 concurrent clients against the real server on a loopback port.

A scripted model answers every request with one tool call after a fixed delay (default 20 ms),
so the model can serve at most 1/delay requests a second: the numbers show what the server adds
(queueing, HTTP, SSE framing, JSON) on top. Both non-streaming and streaming requests are
measured; each client sends a fixed number of requests back to back, so the run is bounded.
``--real-model NAME`` adds a (smaller) run against a local model through ``LocalChat``.

Writes p50/p99 latency and throughput to benchmarks/results/serve.json.
Run: .venv/bin/python benchmarks/bench_serve.py [--clients 8] [--requests 400] [--delay 0.02]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx2 as httpx

from fncall.engine.base import ChatDelta, ChatModel
from fncall.engine.prefix_store import turn_off_for_this_process
from fncall.engine.scripted import turn_to_deltas
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer
from fncall.types import AssistantTurn, Message, Tool, ToolCall

RESULTS = Path(__file__).parent / "results" / "serve.json"
T = TypeVar("T")
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


class DelayChat(ChatModel):
    """Answers a get_weather call after ``delay`` seconds, every time."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def _turn(self, messages: Sequence[Message]) -> AssistantTurn:
        time.sleep(self.delay)
        city = (messages[-1].content or "Paris").split()[-1]
        return AssistantTurn(tool_calls=(ToolCall(name="get_weather", arguments={"city": city}),))

    def complete(
        self, messages: Sequence[Message], tools: Sequence[Tool] = (), **kwargs: Any
    ) -> AssistantTurn:
        return self._turn(messages)

    def stream(
        self, messages: Sequence[Message], tools: Sequence[Tool] = (), **kwargs: Any
    ) -> Iterator[ChatDelta]:
        return iter(turn_to_deltas(self._turn(messages), chunk_size=4))


def one_request(client: httpx.Client, url: str, model: str, stream: bool, i: int) -> float:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": f"Weather in City{i}"}],
        "tools": [TOOL],
        "stream": stream,
    }
    started = time.perf_counter()
    if stream:
        arguments = ""
        with client.stream("POST", url, json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    chunk = json.loads(line[6:])
                    for choice in chunk.get("choices", []):
                        for call in choice["delta"].get("tool_calls") or []:
                            arguments += call["function"].get("arguments", "")
        json.loads(arguments)  # the reassembled arguments must be valid JSON
    else:
        response = client.post(url, json=body)
        response.raise_for_status()
        json.loads(
            response.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        )
    return time.perf_counter() - started


def run_clients(
    clients: int, per_client: int, request: Callable[[httpx.Client, int, int], T]
) -> tuple[list[T], list[str], float]:
    """``clients`` threads, each sending ``per_client`` requests back to back
    (``request(http, client, i)``); returns (their results, the failures, wall seconds).
    A failure is counted and reported, never fatal mid-run."""
    results: list[T] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client_loop(c: int) -> None:
        with httpx.Client(timeout=600) as http:
            for r in range(per_client):
                try:
                    result = request(http, c, r)
                except Exception as exc:
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                with lock:
                    results.append(result)

    threads = [threading.Thread(target=client_loop, args=(c,)) for c in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, failures, time.perf_counter() - started


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; NaN when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def load(base_url: str, model: str, *, clients: int, requests: int, stream: bool) -> dict[str, Any]:
    url = base_url + "/v1/chat/completions"
    per_client = max(1, requests // clients)
    latencies, failures, wall = run_clients(
        clients,
        per_client,
        lambda http, c, r: one_request(http, url, model, stream, c * per_client + r),
    )
    return {
        "stream": stream,
        "clients": clients,
        "requests": clients * per_client,
        "ok": len(latencies),
        "failed": len(failures),
        "failures": failures[:5],
        "p50_ms": round(quantile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(quantile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "throughput_rps": round(len(latencies) / wall, 2),
        "wall_s": round(wall, 3),
    }


def run_model(
    model: ChatModel, name: str, args: argparse.Namespace, requests: int
) -> list[dict[str, Any]]:
    app = create_app(model, model_name=name, max_waiting=max(64, args.clients * 2))
    with BackgroundServer(app) as server:
        return [
            load(server.base_url, name, clients=args.clients, requests=requests, stream=stream)
            for stream in (False, True)
        ]


def main() -> None:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="per mode, all clients")
    parser.add_argument("--delay", type=float, default=0.02, help="scripted model delay (s)")
    parser.add_argument(
        "--real-model",
        default=None,
        help="also run a local model, e.g. qwen2.5-coder-0.5b (slow: keep --real-requests small)",
    )
    parser.add_argument("--real-requests", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    runs = run_model(DelayChat(args.delay), "scripted", args, args.requests)
    ceiling = 1 / args.delay if args.delay > 0 else None
    result: dict[str, Any] = {
        "benchmark": "serve",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "scripted": {"model_delay_s": args.delay, "model_ceiling_rps": ceiling, "runs": runs},
    }
    for run in runs:
        mode = "stream" if run["stream"] else "json"
        print(
            f"scripted {mode:6}: p50 {run['p50_ms']} ms  p99 {run['p99_ms']} ms  "
            f"{run['throughput_rps']} req/s (model ceiling {ceiling} req/s), "
            f"{run['failed']} failed"
        )
    if args.real_model:
        from fncall.engine import load_engine
        from fncall.pipeline import LocalChat

        real = LocalChat(load_engine(args.real_model), max_tokens=64)
        real_runs = run_model(real, args.real_model, args, args.real_requests)
        result["real"] = {"model": args.real_model, "runs": real_runs}
        for run in real_runs:
            print(
                f"{args.real_model} stream={run['stream']}: p50 {run['p50_ms']} ms  "
                f"p99 {run['p99_ms']} ms  {run['throughput_rps']} req/s"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
