"""Hardening figures (issue 20): hostile input costs bounded time and memory.

Three measurements, each in a process of its own so that its peak memory is its own:

- *parse and validate*: seconds to parse or validate the inputs that used to take seconds
  (pythonic ``x[`` x 8,000; ``{`` x 200,000 in every format; an 8,000-digit number to coerce;
  ``uniqueItems`` over 4,000 objects; the patterns ``^(a+)+$`` and ``^(a|a)*$`` against 28 ``a``
  and ``!``, the second bounded by the pattern limit of 1 s of CPU);
- *server memory*: RSS of ``fncall serve`` (a constrained ``LocalChat`` over a scripted engine, a
  grammar per tool set) while ``--tool-sets`` requests each bring a distinct 8-tool set;
- *sandbox memory*: peak RSS of the parent while a sandboxed tool prints ``--print-mb`` MB, and
  while one returns a ``--result-mb`` MB result (refused past ``max_result_bytes``).

These are bounds, not ratios: the "before" column of the README was measured on the commits
before the fixes. Writes benchmarks/results/hardening.json.
Run: .venv/bin/python benchmarks/bench_hardening.py [--tool-sets 1000] [--print-mb 1024]
     [--result-mb 100]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
SETS_MARKS = (0, 100, 500, 1000, 2000)


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _seconds(job: Callable[[], Any]) -> float:
    from fncall.errors import FncallError

    began = time.perf_counter()
    with contextlib.suppress(FncallError):  # refusing the input is the expected outcome
        job()
    return round(time.perf_counter() - began, 4)


def parse_and_validate() -> dict[str, float]:
    from fncall.formats import get_format
    from fncall.tools import validate_arguments
    from fncall.types import Tool

    def tool(spec: dict[str, Any]) -> Tool:
        return Tool(name="f", parameters={"type": "object", "properties": {"x": spec}})

    figures = {"pythonic x[ x 8,000": _seconds(lambda: get_format("pythonic").parse("x[" * 8000))}
    for name in ("json", "hermes", "llama3", "pythonic"):
        syntax = get_format(name)
        figures[f"{name} {{ x 200,000"] = _seconds(lambda s=syntax: s.parse("{" * 200_000))
    number = tool({"type": "number"})
    figures["number coercion, 8,000 digits"] = _seconds(
        lambda: validate_arguments(number, {"x": "1" * 8000 + "x"})
    )
    unique = tool({"type": "array", "uniqueItems": True})
    figures["uniqueItems over 4,000 objects"] = _seconds(
        lambda: validate_arguments(unique, {"x": [{"a": i} for i in range(4000)]})
    )
    for pattern in ("^(a+)+$", "^(a|a)*$"):
        checked = tool({"type": "string", "pattern": pattern})
        figures[f"pattern {pattern}, 28 a and !"] = _seconds(
            lambda t=checked: validate_arguments(t, {"x": "a" * 28 + "!"})
        )
    return figures


def server_memory(tool_sets: int) -> dict[str, Any]:
    import httpx

    from fncall.engine.scripted import ScriptedEngine
    from fncall.pipeline import LocalChat
    from fncall.serve import create_app
    from fncall.serve.testing import BackgroundServer

    engine = ScriptedEngine(["It is sunny."] * tool_sets)
    model = LocalChat(engine, format="json", judge=None)
    marks: dict[int, float] = {}
    began = time.perf_counter()
    with BackgroundServer(create_app(model, model_name="m")) as server, httpx.Client() as client:
        marks[0] = _rss_mb()
        for i in range(tool_sets):
            properties = {f"p{j}_{i}": {"type": "string"} for j in range(4)}
            tools = [
                {
                    "type": "function",
                    "function": {
                        "name": f"tool_{i}_{k}",
                        "description": f"tool {k} of set {i}",
                        "parameters": {
                            "type": "object",
                            "properties": properties,
                            "required": [f"p0_{i}"],
                        },
                    },
                }
                for k in range(8)
            ]
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": tools}
            reply = client.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=60)
            reply.raise_for_status()
            engine.requests.clear()  # the scripted engine records requests; a real one does not
            if i + 1 in SETS_MARKS:
                marks[i + 1] = _rss_mb()
    return {
        "tool_sets": tool_sets,
        "rss_mb_after_sets": {str(k): round(v) for k, v in marks.items()},
        "peak_mb": round(_peak_mb()),
        "seconds": round(time.perf_counter() - began, 1),
    }


def shout(megabytes: int) -> str:
    """A tool that prints ``megabytes`` MB to stderr."""
    line = "x" * 1023 + "\n"
    for _ in range(megabytes * 1024):
        sys.stderr.write(line)
    return "done"


def huge_result(megabytes: int) -> str:
    """A tool that returns a ``megabytes`` MB string."""
    return "x" * (megabytes * 1024 * 1024)


def sandbox_memory(kind: str, megabytes: int) -> dict[str, Any]:
    # The sandbox's child imports the tool by its module: this file, by name, not __main__.
    from bench_hardening import huge_result, shout

    from fncall.execute import SandboxLimits, run_sandboxed

    before = _peak_mb()
    began = time.perf_counter()
    tool = shout if kind == "print" else huge_result
    limits = SandboxLimits(timeout_s=300, cpu_s=300, memory_mb=None)
    result = run_sandboxed(tool, {"megabytes": megabytes}, limits)
    return {
        "megabytes": megabytes,
        "ok": result.ok,
        "error": result.error,
        "parent_peak_mb_before": round(before),
        "parent_peak_mb": round(_peak_mb()),
        "seconds": round(time.perf_counter() - began, 1),
    }


def _in_process(*args: str) -> Any:
    """Run one measurement in a fresh interpreter and return what it printed (JSON)."""
    done = subprocess.run(
        [sys.executable, __file__, "--one", *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool-sets", type=int, default=1000)
    parser.add_argument("--print-mb", type=int, default=1024)
    parser.add_argument("--result-mb", type=int, default=100)
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, *rest = args.one
        if kind == "parse":
            figure: Any = parse_and_validate()
        elif kind == "server":
            figure = server_memory(int(rest[0]))
        else:
            figure = sandbox_memory(kind, int(rest[0]))
        print(json.dumps(figure))
        return 0
    if min(args.tool_sets, args.print_mb, args.result_mb) < 1:
        parser.error("--tool-sets, --print-mb and --result-mb must be at least 1")
    report = {
        "benchmark": "hardening: hostile input costs bounded time and memory",
        "machine": {"platform": platform.platform()},
        "parse_and_validate_s": _in_process("parse"),
        "server": _in_process("server", str(args.tool_sets)),
        "sandbox_print": _in_process("print", str(args.print_mb)),
        "sandbox_result": _in_process("result", str(args.result_mb)),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hardening.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
