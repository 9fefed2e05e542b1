"""The executor: call order, concurrency, timeouts, validation, and errors the model can read."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

import pytest

from conftest import function_tool
from fncall.errors import UserError
from fncall.execute import Executor, Policy, aexecute, execute
from fncall.tools import AbstractToolSet
from fncall.types import Tool, ToolCall


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


ADD = function_tool("add", add, a={"type": "integer"}, b={"type": "integer"})
FAIL = function_tool("fail", fail, message={"type": "string"})


def test_sync_tool_result_and_duration() -> None:
    [result] = execute([ToolCall(name="add", arguments={"a": 2, "b": 3}, id="c1")], [ADD])
    assert result.ok and result.content == 5
    assert (result.call_id, result.name) == ("c1", "add")
    assert result.duration_s >= 0


def test_parallel_calls_run_concurrently_and_return_in_call_order() -> None:
    def nap(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    async def anap(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    tools = [
        function_tool("nap", nap, seconds={"type": "number"}),
        function_tool("anap", anap, seconds={"type": "number"}),
    ]
    calls = [
        ToolCall(name="nap", arguments={"seconds": 0.6}),
        ToolCall(name="anap", arguments={"seconds": 0.1}),
        ToolCall(name="nap", arguments={"seconds": 0.4}),
    ]
    start = time.monotonic()
    results = execute(calls, tools)
    elapsed = time.monotonic() - start

    assert [r.content for r in results] == [0.6, 0.1, 0.4]
    assert [r.call_id for r in results] == [c.id for c in calls]
    assert 0.6 <= elapsed < 0.95, f"took {elapsed:.2f} s: near the sum (1.1 s) means no concurrency"
    assert results[0].duration_s >= 0.6 and results[1].duration_s < 0.4


def test_asyncfunction_tool() -> None:
    async def shout(text: str) -> str:
        await asyncio.sleep(0)
        return text.upper()

    [result] = execute(
        [ToolCall(name="shout", arguments={"text": "hi"})],
        [function_tool("shout", shout, text={"type": "string"})],
    )
    assert result.content == "HI"


def test_sync_tool_timeout_is_reported_and_the_executor_moves_on() -> None:
    release = threading.Event()

    def stuck() -> str:
        release.wait(10)
        return "late"

    start = time.monotonic()
    results = execute(
        [ToolCall(name="stuck"), ToolCall(name="add", arguments={"a": 1, "b": 1})],
        [function_tool("stuck", stuck), ADD],
        timeout=0.3,
    )
    elapsed = time.monotonic() - start
    release.set()  # the abandoned thread finishes in the background

    assert results[0].error == "TimeoutError: tool 'stuck' did not finish within 0.3 s"
    assert results[1].content == 2
    assert elapsed < 2.0


def test_async_tool_timeout_cancels_thefunction_tool() -> None:
    cancelled = []

    async def forever() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    [result] = execute([ToolCall(name="forever")], [function_tool("forever", forever)], timeout=0.2)
    assert result.error == "TimeoutError: tool 'forever' did not finish within 0.2 s"
    assert cancelled == [True]


def test_a_timeout_error_raised_by_the_tool_is_its_own_error() -> None:
    def network() -> None:
        raise TimeoutError("upstream took too long")

    [result] = execute([ToolCall(name="network")], [function_tool("network", network)], timeout=5)
    assert result.error == "TimeoutError: upstream took too long"


def test_exceptions_become_error_results_and_other_calls_still_run() -> None:
    results = execute(
        [
            ToolCall(name="fail", arguments={"message": "no such order 42"}),
            ToolCall(name="add", arguments={"a": 1, "b": 2}),
        ],
        [FAIL, ADD],
    )
    assert results[0].error == "ValueError: no such order 42"
    assert results[0].render() == "Error: ValueError: no such order 42"
    assert results[1].content == 3


def test_sys_exit_inside_a_tool_does_not_stop_the_caller() -> None:
    def quit_() -> None:
        sys.exit(3)

    [result] = execute([ToolCall(name="quit")], [function_tool("quit", quit_)])
    assert result.error == "SystemExit: 3"


def test_unknown_tool_names_the_available_tools() -> None:
    [result] = execute([ToolCall(name="sub", arguments={"a": 1})], [ADD, FAIL])
    assert result.error == "ToolError: unknown tool 'sub'; available: 'add', 'fail'"


def test_schema_only_tool_is_an_error_result() -> None:
    [result] = execute([ToolCall(name="remote")], [Tool(name="remote")])
    assert result.error == "ToolError: tool 'remote' has a schema but no function to run"


def test_arguments_are_validated_before_the_call() -> None:
    calls = []

    def record(a: int, b: int) -> int:
        calls.append((a, b))
        return a + b

    tool = function_tool("add", record, a={"type": "integer"}, b={"type": "integer"})
    results = execute(
        [
            ToolCall(name="add", arguments={"a": "one", "b": 2}),
            ToolCall(name="add", arguments={"a": 1}),
            ToolCall(name="add", arguments={"a": "4", "b": 2}),  # safely coerced
        ],
        [tool],
    )
    first, second = str(results[0].error), str(results[1].error)
    assert first.startswith("ArgumentError: invalid arguments for 'add': ") and "'one'" in first
    assert second.startswith("ArgumentError: ") and "'b'" in second
    assert results[2].content == 6
    assert calls == [(4, 2)]


def test_tool_sets_as_mapping_or_a_tool_set_of_ones_own() -> None:
    class Registry(AbstractToolSet):
        def __init__(self, *tools: Tool) -> None:
            self._tools = {t.name: t for t in tools}

        def tool_map(self) -> dict[str, Tool]:
            return dict(self._tools)

    call = ToolCall(name="add", arguments={"a": 1, "b": 1})
    assert execute([call], {"add": ADD})[0].content == 2
    assert execute([call], Registry(ADD))[0].content == 2
    [missing] = execute([ToolCall(name="x")], Registry(ADD, FAIL))
    assert missing.error == "ToolError: unknown tool 'x'; available: 'add', 'fail'"
    with pytest.raises(UserError, match="must map each name to the Tool of that name"):
        Executor({"plus": ADD})


def test_policy_is_consulted_before_running() -> None:
    ran = []

    def refund(order: str) -> str:
        ran.append(order)
        return "refunded"

    tools = [function_tool("refund_order", refund, order={"type": "string"}), ADD]
    policy = Policy(rules={"refund_*": "deny"})
    results = execute(
        [
            ToolCall(name="refund_order", arguments={"order": "A1"}),
            ToolCall(name="add", arguments={"a": 1, "b": 1}),
        ],
        tools,
        policy=policy,
    )
    assert results[0].error == (
        "PermissionDenied: tool 'refund_order' is denied by rule 'refund_*' (deny)"
    )
    assert results[1].content == 2
    assert ran == []


def test_sync_api_works_inside_a_running_event_loop() -> None:
    async def main():
        return execute([ToolCall(name="add", arguments={"a": 5, "b": 5})], [ADD])

    assert asyncio.run(main())[0].content == 10


def test_aexecute() -> None:
    results = asyncio.run(aexecute([ToolCall(name="add", arguments={"a": 1, "b": 2})], [ADD]))
    assert results[0].content == 3


def test_caller_mistakes_raise_user_errors() -> None:
    with pytest.raises(UserError, match="timeout must be a positive number"):
        Executor([ADD], timeout=0)
    with pytest.raises(UserError, match="calls must be a list of ToolCall"):
        execute(ToolCall(name="add"), [ADD])  # type: ignore[arg-type]
    with pytest.raises(UserError, match="calls must be ToolCall objects"):
        execute([{"name": "add"}], [ADD])  # type: ignore[list-item]
    with pytest.raises(UserError, match="tools must be a tool set, a Tool, a list"):
        Executor(42)
    with pytest.raises(UserError, match=r"sandbox\['add'\] must be a SandboxLimits"):
        Executor([ADD], sandbox={"add": 5})


def test_a_tools_toolset_works_and_unknown_names_get_a_hint() -> None:
    from fncall.tools.registry import ToolSet

    toolset = ToolSet()
    toolset.add(ADD)
    toolset.add(FAIL)
    results = execute(
        [ToolCall(name="add", arguments={"a": 1, "b": 1}), ToolCall(name="ad")], toolset
    )
    assert results[0].content == 2
    assert results[1].error == (
        "ToolError: unknown tool 'ad' (did you mean 'add'?); available: 'add', 'fail'"
    )


class _Stop(BaseException):
    """A BaseException of a tool's own, outside Exception like SystemExit."""


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (SystemExit(3), "SystemExit: 3"),
        (KeyboardInterrupt(), "KeyboardInterrupt"),
        (asyncio.CancelledError("tool gave up"), "CancelledError: tool gave up"),
        (GeneratorExit(), "GeneratorExit"),
        (_Stop("halt"), "_Stop: halt"),
    ],
    ids=["SystemExit", "KeyboardInterrupt", "CancelledError", "GeneratorExit", "own"],
)
def test_an_async_tool_raising_a_base_exception_is_contained(
    raised: BaseException, expected: str
) -> None:
    """Issue 20, item 1: a BaseException from an async tool used to escape ``Executor.run``
    (SystemExit stopped ``fncall serve``); it must be an error result like a sync tool's."""

    async def quit_() -> None:
        await asyncio.sleep(0)
        raise raised

    for timeout in (5.0, None):
        results = execute(
            [ToolCall(name="quit"), ToolCall(name="add", arguments={"a": 1, "b": 2})],
            [function_tool("quit", quit_), ADD],
            timeout=timeout,
        )
        assert results[0].error == expected
        assert results[1].content == 3


def test_an_async_tool_raising_cancelled_error_inside_a_running_loop_is_contained() -> None:
    async def give_up() -> None:
        raise asyncio.CancelledError()

    async def caller() -> list[str | None]:
        results = await aexecute([ToolCall(name="give_up")], [function_tool("give_up", give_up)])
        await asyncio.sleep(0)  # the caller's task was not cancelled
        return [r.error for r in results]

    assert asyncio.run(caller()) == ["CancelledError"]


def test_a_cancelled_caller_still_cancels_its_tools() -> None:
    cancelled = []

    async def forever() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def caller() -> None:
        job = asyncio.ensure_future(
            aexecute([ToolCall(name="forever")], [function_tool("forever", forever)])
        )
        await asyncio.sleep(0.05)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    asyncio.run(caller())
    assert cancelled == [True]


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken too")


class _UnprintableExit(SystemExit):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken too")


def _within(seconds: float, job: Any) -> Any:
    """Run ``job()`` in a daemon thread; fail (instead of hanging the suite) past ``seconds``."""
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(job()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert box, f"did not return within {seconds} s"
    return box[0]


@pytest.mark.parametrize("exception", [_Unprintable, _UnprintableExit])
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("timeout", [5.0, None])
def test_an_exception_whose_str_raises_is_still_an_error_result(
    exception: type[BaseException], kind: str, timeout: float | None
) -> None:
    """Issue 20, item 1: ``str(exc)`` raising used to crash the caller, report a timeout that
    never happened, or (``timeout=None``) hang forever."""

    def broken() -> None:
        raise exception()

    async def abroken() -> None:
        raise exception()

    tool = function_tool("broken", broken if kind == "sync" else abroken)
    start = time.monotonic()
    [result] = _within(3.0, lambda: execute([ToolCall(name="broken")], [tool], timeout=timeout))
    assert time.monotonic() - start < 2.0
    assert result.error == f"{exception.__name__} (its message could not be rendered)"


def test_a_sync_tool_raising_stop_iteration_is_an_error_result() -> None:
    def empty() -> None:
        raise StopIteration("nothing left")

    [result] = _within(
        3.0,
        lambda: execute([ToolCall(name="empty")], [function_tool("empty", empty)], timeout=None),
    )
    assert result.error == "StopIteration: nothing left"
