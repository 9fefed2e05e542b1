"""The sandbox: limits stop runaway tools, the caller survives, secrets stay in the parent."""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from collections.abc import Callable

import pytest

from conftest import function_tool
from fncall.errors import UserError
from fncall.execute import SandboxLimits, execute, run_sandboxed
from fncall.execute.sandbox import child_environment
from fncall.types import Tool, ToolCall

# Tools must be importable by the child, so they live at module level.


def add(a: int, b: int) -> dict:
    print("adding", file=sys.stderr)
    print("stdout is redirected too")
    return {"sum": a + b}


def hog_memory(megabytes: int) -> int:
    blocks = [bytearray(1024 * 1024) for _ in range(megabytes)]
    return len(blocks)


def spin() -> None:
    while True:
        pass


def nap(seconds: float) -> str:
    time.sleep(seconds)
    return "awake"


def read_env(name: str) -> dict:
    return {"value": os.environ.get(name), "names": sorted(os.environ)}


def explode() -> None:
    raise ValueError("bad input 7")


def hard_exit() -> None:
    os._exit(7)


def shout(megabytes: int) -> str:
    line = "x" * 1023 + "\n"
    for _ in range(megabytes * 1024):
        sys.stderr.write(line)
    return "done"


def huge_result(megabytes: int) -> str:
    return "x" * (megabytes * 1024 * 1024)


def fork_and_leave(count: int, pid_file: str) -> str:
    """Start ``count`` children that close the pipes they inherited (so the caller sees the end
    of the output) and sleep on; return at once."""
    for _ in range(count):
        if os.fork() == 0:
            os.closerange(1, 1024)
            with open(pid_file, "a") as handle:
                handle.write(f"{os.getpid()}\n")
            time.sleep(60)
            os._exit(0)
    return "left"


def claim_memory_error() -> None:
    print("MemoryError", file=sys.stderr)
    os._exit(7)


def nap_then_sigkill(seconds: float) -> None:
    time.sleep(seconds)
    os.kill(os.getpid(), 9)


async def async_add(a: int, b: int) -> int:
    return a + b


SMALL = SandboxLimits(timeout_s=20, cpu_s=5, memory_mb=300)


def test_returns_the_value_and_captures_output() -> None:
    result = run_sandboxed(add, {"a": 2, "b": 3}, SMALL)
    assert result.ok and result.value == {"sum": 5}
    assert result.exit_code == 0
    assert "adding" in result.stderr and "stdout is redirected too" in result.stderr
    assert not (result.timed_out or result.memory_exceeded or result.cpu_exceeded)


def test_async_tool_runs_to_completion() -> None:
    assert run_sandboxed(async_add, {"a": 1, "b": 2}, SMALL).value == 3


def test_exception_is_reported_not_raised() -> None:
    result = run_sandboxed(explode, {}, SMALL)
    assert not result.ok and result.error == "ValueError: bad input 7"
    assert result.exit_code == 1


def test_memory_hog_is_stopped() -> None:
    result = run_sandboxed(hog_memory, {"megabytes": 2000}, SMALL)
    assert not result.ok and result.memory_exceeded
    assert result.error == "MemoryError: tool 'hog_memory' exceeded its memory limit of 300 MB"


def test_infinite_loop_is_stopped_by_the_cpu_limit() -> None:
    result = run_sandboxed(spin, {}, SandboxLimits(timeout_s=30, cpu_s=1, memory_mb=300))
    assert not result.ok and result.cpu_exceeded and not result.timed_out
    assert result.error == "TimeoutError: tool 'spin' exceeded its CPU limit of 1 s"


def test_hanging_tool_is_killed_at_the_wall_clock_limit() -> None:
    start = time.monotonic()
    result = run_sandboxed(nap, {"seconds": 30}, SandboxLimits(timeout_s=0.5, memory_mb=300))
    assert time.monotonic() - start < 10
    assert result.timed_out and result.exit_code is not None and result.exit_code < 0
    assert result.error == "TimeoutError: tool 'nap' did not finish within 0.5 s"


def test_secrets_in_the_parent_environment_are_not_visible(monkeypatch) -> None:
    monkeypatch.setenv("FNCALL_TEST_SECRET", "sk-do-not-leak")
    limits = SandboxLimits(timeout_s=20, memory_mb=300, env={"GREETING": "hi"})
    result = run_sandboxed(read_env, {"name": "FNCALL_TEST_SECRET"}, limits)
    assert result.ok and result.value["value"] is None
    assert set(result.value["names"]) <= {"PATH", "LANG", "LC_ALL", "HOME", "GREETING", "LC_CTYPE"}
    assert "GREETING" in result.value["names"]
    assert "FNCALL_TEST_SECRET" not in child_environment(limits)


def test_a_crashing_child_is_reported() -> None:
    result = run_sandboxed(hard_exit, {}, SMALL)
    assert not result.ok and result.exit_code == 7
    assert str(result.error).startswith(
        "ToolError: tool 'hard_exit' exited with code 7 without a result"
    )


def test_unpicklable_function_is_a_caller_error() -> None:
    with pytest.raises(UserError, match=r"cannot be pickled.*module-level functions"):
        run_sandboxed(lambda: 1, {}, SMALL)


def test_limits_are_checked() -> None:
    with pytest.raises(UserError, match=r"SandboxLimits.memory_mb must be a positive number"):
        SandboxLimits(memory_mb=-1)
    with pytest.raises(UserError, match=r"whole number of seconds, got 1\.5"):
        SandboxLimits(cpu_s=1.5)  # type: ignore[arg-type]


def test_executor_runs_chosen_tools_in_the_sandbox() -> None:
    tools = [
        function_tool("add", add, a={"type": "integer"}, b={"type": "integer"}),
        function_tool("hog", hog_memory, megabytes={"type": "integer"}),
        function_tool("env", read_env, name={"type": "string"}),
    ]
    os.environ["FNCALL_TEST_SECRET_2"] = "sk-2"
    try:
        results = execute(
            [
                ToolCall(name="add", arguments={"a": 1, "b": 2}),
                ToolCall(name="hog", arguments={"megabytes": 2000}),
                ToolCall(name="env", arguments={"name": "FNCALL_TEST_SECRET_2"}),
            ],
            tools,
            sandbox={"hog": SMALL, "env": SMALL},
            timeout=20,
        )
    finally:
        del os.environ["FNCALL_TEST_SECRET_2"]
    assert results[0].content == {"sum": 3}  # in-process
    assert results[1].error == "MemoryError: tool 'hog' exceeded its memory limit of 300 MB"
    assert results[2].ok and results[2].content["value"] is None


def test_executor_timeout_caps_the_sandbox_wall_clock() -> None:
    tool = function_tool("nap", nap, seconds={"type": "number"})
    [result] = execute(
        [ToolCall(name="nap", arguments={"seconds": 30})], [tool], sandbox=["nap"], timeout=0.5
    )
    assert result.error == "TimeoutError: tool 'nap' did not finish within 0.5 s"


def test_executor_reports_a_tool_that_cannot_be_sandboxed() -> None:
    tool = Tool(name="inline", function=lambda: 1)
    [result] = execute([ToolCall(name="inline")], [tool], sandbox=True)
    assert str(result.error).startswith("UserError: tool 'inline' cannot run sandboxed")


def _peak_python_bytes(job: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        job()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_tool_printing_without_end_costs_the_parent_bounded_memory() -> None:
    """Issue 20, item 8: the parent read all of a tool's output to keep its last 4,000
    characters (800 MB printed: parent RSS 2.4 GB); it keeps only that tail as it reads."""
    results = []
    peak = _peak_python_bytes(lambda: results.append(run_sandboxed(shout, {"megabytes": 64})))
    (result,) = results
    assert result.ok and result.value == "done"
    assert result.stderr.endswith("x\n") and len(result.stderr) <= 4000 + 4
    assert peak < 8 * 1024 * 1024, f"the parent held {peak / 1e6:.0f} MB for 64 MB printed"


def test_a_result_over_its_limit_is_an_error_in_bounded_memory() -> None:
    """A 100 MB result cost the parent 428 MB; past ``max_result_bytes`` it is an error, and the
    parent stops reading there."""
    limits = SandboxLimits(max_result_bytes=1024 * 1024)
    results = []
    peak = _peak_python_bytes(
        lambda: results.append(run_sandboxed(huge_result, {"megabytes": 64}, limits))
    )
    (result,) = results
    assert not result.ok and result.output_exceeded
    assert result.error == (
        "ToolError: tool 'huge_result' returned more than 1048576 bytes of result "
        "(SandboxLimits.max_result_bytes)"
    )
    assert peak < 8 * 1024 * 1024, f"the parent held {peak / 1e6:.0f} MB for a 64 MB result"
    small = run_sandboxed(huge_result, {"megabytes": 0}, limits)
    assert small.ok and small.value == ""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc")
def test_children_of_the_tool_end_with_the_call(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 20, item 9: children in the tool's process group that closed their pipes outlived
    a normal return (the group was killed only on a timeout)."""
    pid_file = tmp_path / "pids"
    result = run_sandboxed(fork_and_leave, {"count": 20, "pid_file": str(pid_file)})
    assert result.ok and result.value == "left"
    deadline = time.monotonic() + 5
    while len(pid_file.read_text().split()) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)  # each child writes its pid after the fork
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 20
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if _running(p)] == []


def test_a_limit_is_reported_only_when_it_was_reached() -> None:
    """Issue 20, item 9: "MemoryError" printed before exit code 7 was reported as the memory
    limit, and a SIGKILL after a 1.5 s sleep under cpu_s=1 as the CPU limit."""
    claimed = run_sandboxed(claim_memory_error)
    assert not claimed.ok and not claimed.memory_exceeded and claimed.exit_code == 7
    assert claimed.error is not None and "exited with code 7" in claimed.error
    killed = run_sandboxed(nap_then_sigkill, {"seconds": 1.5}, SandboxLimits(cpu_s=1))
    assert not killed.ok and not killed.cpu_exceeded and killed.exit_code == -9
    assert killed.error is not None and "killed by signal 9" in killed.error
