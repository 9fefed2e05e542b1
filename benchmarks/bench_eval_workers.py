"""Evaluation throughput with ``--workers``: cases per minute against a remote endpoint.

Against an endpoint, ``--workers`` asks that many cases at once on threads, which pays when the
server batches (vLLM, SGLang, a hosted API; a local model runs processes instead, see
bench_eval_processes.py). This benchmark stands one in: fncall's real server on a loopback
port, in front of a model that takes a fixed ``--delay`` per request and declares that it serves
up to 16 requests at once (as a batching backend does). ``fncall eval run --endpoint`` scores the
same BFCL cases with 1, 4 and 16 workers; the figures are cases per minute, end to end (CLI
start, HTTP, checker, JSONL writes), and the ratio to one worker in the same run.

    .venv/bin/python benchmarks/bench_eval_workers.py [--delay 0.25] [--cases 48] [--runs 3]

Writes benchmarks/results/eval_workers.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fncall.engine.base import ChatCapabilities, ChatDelta, ChatModel
from fncall.engine.scripted import turn_to_deltas
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer
from fncall.types import AssistantTurn, Message, Tool, ToolCall

RESULTS = Path(__file__).parent / "results" / "eval_workers.json"
CATEGORIES = ("simple_python", "multiple")


class BatchingDelayChat(ChatModel):
    """Calls the first offered tool after ``delay`` seconds; up to 16 requests at once."""

    capabilities = ChatCapabilities(thread_safe=True, max_batch_size=16)

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.name = "delay"

    def complete(
        self, messages: Sequence[Message], tools: Sequence[Tool] = (), **kwargs: Any
    ) -> AssistantTurn:
        time.sleep(self.delay)
        if not tools:
            return AssistantTurn(content="no tool")
        return AssistantTurn(tool_calls=(ToolCall(name=tools[0].name, arguments={}),))

    def stream(
        self, messages: Sequence[Message], tools: Sequence[Tool] = (), **kwargs: Any
    ) -> Iterator[ChatDelta]:
        return iter(turn_to_deltas(self.complete(messages, tools), chunk_size=4))


def one_run(base_url: str, workers: int, cases: int, out: Path) -> dict[str, Any]:
    per_category = max(1, cases // len(CATEGORIES))
    command = [
        str(Path(sys.executable).parent / "fncall"),
        "eval",
        "run",
        "--endpoint",
        base_url + "/v1",
        "--model",
        "delay",
        "--api-key",
        "unused",
        "--categories",
        *CATEGORIES,
        "--limit",
        str(per_category),
        "--workers",
        str(workers),
        "--no-progress",
        "--out",
        str(out),
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    done = len((out / "results.jsonl").read_text().splitlines())
    return {"cases": done, "wall_s": wall, "cases_per_min": done / wall * 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.25, help="seconds per request")
    parser.add_argument("--cases", type=int, default=48)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    app = create_app(BatchingDelayChat(args.delay), model_name="delay")
    figures: dict[int, list[dict[str, Any]]] = {1: [], 4: [], 16: []}
    with BackgroundServer(app) as server, tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for workers in figures:  # interleaved, so every setting sees the same machine
                out = Path(tmp) / f"w{workers}-r{run}"
                figures[workers].append(one_run(server.base_url, workers, args.cases, out))
    base = statistics.median(r["cases_per_min"] for r in figures[1])
    results = {
        "machine": platform.processor() or platform.machine(),
        "delay_s": args.delay,
        "model_slots": BatchingDelayChat.max_batch_size,
        "cases": args.cases,
        "runs": args.runs,
        "workers": {
            str(workers): {
                "cases_per_min": round(statistics.median(r["cases_per_min"] for r in rows), 1),
                "ratio_to_1_worker": round(
                    statistics.median(r["cases_per_min"] for r in rows) / base, 2
                ),
            }
            for workers, rows in figures.items()
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
