"""Run the tool calls of one model turn and return one ``ToolResult`` per call, in call order.

Every call goes through the same steps: refuse it if a deny rule of the permission policy
matches, look the tool up, validate and coerce the arguments against the tool's schema, ask the
policy's callback (it sees those arguments, exactly what will run), then run it under a
timeout. Whatever goes wrong at any step becomes a ``ToolResult`` whose ``error`` the model can
read (``"ArgumentError: ..."``, ``"TimeoutError: ..."``, ``"ValueError: ..."``), whatever the
tool raised (``SystemExit`` included); the executor itself only raises for caller mistakes (a
bad option, a call that is not a ``ToolCall``).

Calls of one turn run concurrently: async tools as tasks on the event loop, sync tools each in
a daemon thread, sandboxed tools each in a child process. Policy checks and validation run
first, one call at a time in call order, so an ``ask`` callback that prompts a person sees one
question at a time.

Timeouts: an async tool that runs past ``timeout`` is cancelled. A sync tool cannot be stopped,
because Python cannot kill a thread: it is reported as timed out and the executor moves on, but
its thread keeps running in the background until the function returns. (Likewise an async tool
that blocks the event loop without awaiting cannot be interrupted.) For a hard limit (the
work really stops, CPU and memory are capped) run the tool in the sandbox:
``Executor(tools, sandbox={"tool_name": SandboxLimits(timeout_s=5)})``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any

from fncall.errors import ToolError, UserError, describe_exception
from fncall.execute.policy import Policy
from fncall.execute.sandbox import SandboxLimits, run_sandboxed
from fncall.tools.registry import ToolsInput, as_toolset, unknown_tool_message
from fncall.tools.schema import python_arguments
from fncall.tools.validation import validate_arguments
from fncall.tools.wrappers import WrapperToolSet
from fncall.types import Tool, ToolCall, ToolResult

SandboxSpec = Mapping[str, SandboxLimits] | Iterable[str] | bool | None


class Executor:
    """Runs tool calls against a tool set with a policy, timeouts and optional sandboxing.

    ``timeout`` (seconds, ``None`` for none) applies to every call. ``sandbox`` chooses which
    tools run in a child process: a mapping of tool name to ``SandboxLimits``, a list of names
    (default limits), or ``True`` for every tool. A sandboxed call's wall-clock limit is the
    smaller of its ``SandboxLimits.timeout_s`` and ``timeout``.
    """

    def __init__(
        self,
        tools: ToolsInput,
        *,
        timeout: float | None = 30.0,
        policy: Policy | None = None,
        sandbox: SandboxSpec = None,
        validate: bool = True,
    ) -> None:
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise UserError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        if policy is not None and not isinstance(policy, Policy):
            raise UserError(f"policy must be a fncall.execute.Policy, got {policy!r}")
        self.tools = as_toolset(tools)
        self.timeout = float(timeout) if timeout is not None else None
        self.policy = policy
        self.validate = validate
        self._sandbox_all: SandboxLimits | None = None
        self._sandbox: dict[str, SandboxLimits] = {}
        if sandbox is True:
            self._sandbox_all = SandboxLimits()
        elif isinstance(sandbox, Mapping):
            for name, limits in sandbox.items():
                if not isinstance(limits, SandboxLimits):
                    raise UserError(f"sandbox[{name!r}] must be a SandboxLimits, got {limits!r}")
                self._sandbox[name] = limits
        elif sandbox not in (None, False):
            if isinstance(sandbox, str) or not isinstance(sandbox, Iterable):
                raise UserError(
                    "sandbox must be a mapping of tool name to SandboxLimits, a list of tool "
                    f"names, True or None; got {sandbox!r}"
                )
            self._sandbox = {name: SandboxLimits() for name in sandbox}

    def sandbox_limits(self, tool_name: str) -> SandboxLimits | None:
        """The limits a tool runs under in the sandbox, or ``None`` if it runs in-process."""
        return self._sandbox.get(tool_name, self._sandbox_all)

    def run(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        """Run the calls; results in call order. Usable from sync code, even inside a running
        event loop (the calls then run on a private loop in a helper thread)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(calls))
        box: list[list[ToolResult] | BaseException] = []

        def target() -> None:
            try:
                box.append(asyncio.run(self.arun(calls)))
            except BaseException as exc:
                box.append(exc)

        helper = threading.Thread(target=target, name="fncall-executor", daemon=True)
        helper.start()
        helper.join()
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    async def arun(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        """Run the calls concurrently; results in call order."""
        if isinstance(calls, ToolCall) or not isinstance(calls, Sequence):
            raise UserError(f"calls must be a list of ToolCall, got {calls!r}")
        for call in calls:
            if not isinstance(call, ToolCall):
                raise UserError(f"calls must be ToolCall objects, got {call!r}")
        jobs: list[Coroutine[Any, Any, ToolResult]] = []
        try:
            for call in calls:  # one at a time, in call order: an ask callback may prompt
                jobs.append(await self._admit(call))
        except BaseException:
            for job in jobs:
                job.close()
            raise
        return list(await asyncio.gather(*jobs))

    async def _admit(self, call: ToolCall) -> Coroutine[Any, Any, ToolResult]:
        """The job that gives a call's result, once the policy and validation have spoken.

        A deny rule refuses the call before anything else. The arguments are then validated and
        coerced, and an ``ask`` callback sees exactly those: what will run. Rules match every
        name the tool has, through the views that rename or prefix it.
        """
        start = time.monotonic()
        names = self._inner_names(call.name)
        decision = None
        if self.policy is not None:
            decision, _ = self.policy.decision_for(call.name, aliases=names)
            refused = await self._verdict(call, names) if decision == "deny" else None
            if refused is not None:
                return _finished(refused)
        try:
            tool, arguments = await self._prepare(call)
        except Exception as exc:
            return _finished(_failed(call, exc, start))
        if decision == "ask":
            refused = await self._verdict(dataclasses.replace(call, arguments=arguments), names)
            if refused is not None:
                return _finished(refused)
        return self._run_one(call, tool, arguments, start)

    async def _verdict(self, call: ToolCall, names: tuple[str, ...]) -> ToolResult | None:
        """The refusal of a call, or ``None`` when the policy lets it run."""
        assert self.policy is not None
        verdict = await self.policy.acheck(call, aliases=names)
        if verdict.allowed:
            return None
        return ToolResult(call_id=call.id, name=call.name, error=verdict.error())

    def _inner_names(self, name: str) -> tuple[str, ...]:
        """The tool's names inside the views that show it as ``name`` (outermost first)."""
        if not isinstance(self.tools, WrapperToolSet) or name not in self.tools:
            return ()
        return tuple(n for n in dict.fromkeys(self.tools.inner_names(name)) if n != name)

    async def _prepare(self, call: ToolCall) -> tuple[Tool, dict[str, Any]]:
        """The tool a call names and its validated, coerced arguments."""
        tool = self.tools.tool_map().get(call.name)
        if tool is None:
            raise ToolError(unknown_tool_message(call.name, self.tools.names))
        if tool.function is None:
            raise ToolError(f"tool {call.name!r} has a schema but no function to run")
        if not self.validate:
            return tool, dict(call.arguments)
        # Off the event loop: validating a large value against a large schema takes a while.
        return tool, await asyncio.to_thread(validate_arguments, tool, call.arguments)

    async def _run_one(
        self, call: ToolCall, tool: Tool, arguments: dict[str, Any], start: float
    ) -> ToolResult:
        try:
            content = await self._call(tool, arguments)
        except Exception as exc:
            return _failed(call, exc, start)
        return ToolResult(
            call_id=call.id, name=call.name, content=content, duration_s=time.monotonic() - start
        )

    async def _call(self, tool: Tool, arguments: dict[str, Any]) -> Any:
        # JSON has no enums, tuples or dataclasses: give the function the types it declares.
        arguments = python_arguments(tool, arguments)
        limits = self.sandbox_limits(tool.name)
        if limits is not None:
            return await self._call_sandboxed(tool, arguments, limits)
        assert tool.function is not None
        if inspect.iscoroutinefunction(tool.function):
            job = tool.function(**arguments)
        else:
            job = _in_daemon_thread(tool.function, arguments, tool.name)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        value = await self._await_within(job, tool.name, deadline)
        if inspect.isawaitable(value):  # a sync callable that returned a coroutine
            value = await self._await_within(value, tool.name, deadline)
        return value

    async def _await_within(self, job: Any, tool_name: str, deadline: float | None) -> Any:
        # Not asyncio.wait_for: it cannot tell our timeout from a TimeoutError the tool raised.
        task = asyncio.ensure_future(_contained(job))
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            done, _ = await asyncio.wait({task}, timeout=remaining)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            raise _CallFailed(
                f"TimeoutError: tool {tool_name!r} did not finish within {self.timeout} s"
            )
        return task.result()

    async def _call_sandboxed(
        self, tool: Tool, arguments: dict[str, Any], limits: SandboxLimits
    ) -> Any:
        if self.timeout is not None and (
            limits.timeout_s is None or limits.timeout_s > self.timeout
        ):
            limits = dataclasses.replace(limits, timeout_s=self.timeout)
        function = tool.function
        assert function is not None
        result = await _in_daemon_thread(
            lambda: run_sandboxed(function, arguments, limits, name=tool.name), {}, tool.name
        )
        if not result.ok:
            raise _CallFailed(result.error or f"ToolError: tool {tool.name!r} failed")
        return result.value


class _CallFailed(Exception):
    """Carries an already rendered ``ToolResult.error`` text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _finished(result: ToolResult) -> ToolResult:
    return result


def _failed(call: ToolCall, exc: Exception, start: float) -> ToolResult:
    error = exc.message if isinstance(exc, _CallFailed) else describe_exception(exc)
    return ToolResult(
        call_id=call.id, name=call.name, error=error, duration_s=time.monotonic() - start
    )


async def _contained(job: Awaitable[Any]) -> Any:
    """Await a tool's awaitable so that none of its own BaseExceptions leaves it.

    A task re-raises SystemExit and KeyboardInterrupt out of the event loop itself (that
    stopped ``fncall serve``), and a CancelledError the tool raises would pass for the caller's
    own cancellation. Only a real cancellation (our timeout, or the caller cancelled) goes on.
    """
    try:
        return await job
    except Exception:
        raise
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        raise _CallFailed(describe_exception(exc)) from None
    except BaseException as exc:
        raise _CallFailed(describe_exception(exc)) from None


async def _in_daemon_thread(
    function: Callable[..., Any], arguments: Mapping[str, Any], name: str
) -> Any:
    """Run a sync function in its own daemon thread.

    Not ``asyncio.to_thread``: the default executor's threads are joined when the loop and the
    interpreter shut down, so one timed-out tool would hang ``asyncio.run`` and the program's
    exit. A daemon thread that outlives its caller is simply abandoned.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(ok: bool, outcome: Any) -> None:
        if future.done():  # cancelled: the caller timed out and moved on
            return
        if ok:
            future.set_result(outcome)
        elif isinstance(outcome, StopIteration):  # a future refuses it (TypeError): wrap it
            future.set_exception(_CallFailed(describe_exception(outcome)))
        else:
            future.set_exception(outcome)

    def target() -> None:
        try:
            outcome, ok = context.run(function, **arguments), True
        except Exception as exc:
            outcome, ok = exc, False
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: must not stop the caller
            outcome, ok = _CallFailed(describe_exception(exc)), False
        # A closed loop raises RuntimeError: nobody waits for this result any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, ok, outcome)

    threading.Thread(target=target, name=f"fncall-tool-{name}", daemon=True).start()
    return await future


def execute(calls: Sequence[ToolCall], tools: ToolsInput, **options: Any) -> list[ToolResult]:
    """Run ``calls`` against ``tools``; options as for ``Executor``. Results in call order."""
    return Executor(tools, **options).run(calls)


async def aexecute(
    calls: Sequence[ToolCall], tools: ToolsInput, **options: Any
) -> list[ToolResult]:
    """Async ``execute``."""
    return await Executor(tools, **options).arun(calls)
