"""Run one tool call in a child process under resource limits, and report what happened.

What it protects against (each with a test in ``tests/test_execute_sandbox.py``):
  * runaway CPU: ``RLIMIT_CPU`` stops a busy loop after ``cpu_s`` seconds of CPU time (reported
    as ``cpu_exceeded`` only when the child did use that much CPU, not for any SIGKILL);
  * runaway memory: ``RLIMIT_AS`` caps the child's address space at ``memory_mb``, so an
    allocation fails inside the child instead of exhausting the machine (reported as
    ``memory_exceeded`` only on the child's own report of a ``MemoryError``, not on text);
  * hanging: a wall-clock ``timeout_s`` kills the child, e.g. a tool stuck sleeping or waiting
    on a socket;
  * leftover processes: the child runs in its own session and process group, and the whole
    group is killed when the call ends, however it ends (a return, an error, a timeout), so
    children the tool started do not outlive the call even if they closed their pipes;
  * secrets in the child's environment: it starts with a clean environment holding only an
    allow-list (``PATH``, ``LANG``, ``LC_ALL``, ``HOME`` by default) plus what ``env`` adds
    explicitly, so API keys in the parent's ``os.environ`` are not in the tool's;
  * crashes: a segfault or ``os._exit`` in the tool takes down the child, never the caller;
  * runaway output: the caller reads what the tool prints as it comes and keeps only its last
    ``max_stderr_chars``, and reads at most ``max_result_bytes`` of the result (past that the
    call fails with ``output_exceeded``), so a tool printing 1 GB costs the caller no memory.

What it does NOT protect against:
  * reading the parent's secrets another way: the child runs as the same user, so it can read
    the environment the caller's process was started with from ``/proc/<parent pid>/environ``
    (and files the user can read). Keep secrets out of that environment (load them from a file
    readable only where needed) or run tools in a container;
  * processes that leave the group: a child that starts its own session (``setsid``, a
    daemon's double fork) is not killed with the group and may outlive the call;
  * memory across processes: ``memory_mb`` applies to each process; a tool that forks three
    children may use three times ``memory_mb`` (a cgroup, from a container or systemd, bounds
    the total);
  * filesystem and network access: the child has the same files and network as the caller;
  * hostile code: a malicious tool can escape a plain process (it may ptrace or signal other
    processes of the user, ...). This is not a security boundary; run untrusted code in a
    container or VM.

Mechanics: the tool's function and arguments travel to the child by pickle over stdin, so the
function must be importable (a module-level function) or otherwise picklable, and its module must
be importable from the parent's ``sys.path`` (passed on to the child). The result travels back as
JSON over a private pipe (values JSON cannot encode are sent as ``str``): the parent never
unpickles what the child sends, so a misbehaving tool cannot run code in the caller that way.
Whatever the tool prints goes to ``stderr`` in the result. Limits are set in the child after
the interpreter and the tool's module are loaded, just before the call, so ``memory_mb`` caps the
whole process including the interpreter (a few tens of MB): leave headroom for it.

``run_sandboxed`` returns a ``SandboxResult`` and does not raise for anything the tool does.
"""

from __future__ import annotations

import json
import os
import pickle
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fncall.errors import UserError

DEFAULT_ENV_ALLOW: tuple[str, ...] = ("PATH", "LANG", "LC_ALL", "HOME")

# The child's program. It imports nothing from fncall so that a broken install or a heavy
# package __init__ cannot change what the sandbox does; it gets sys.path from the parent.
_CHILD = r"""
import asyncio, inspect, json, os, pickle, resource, sys
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # the tool's prints go to stderr; fd 1's old target carries only the result
def send(record):
    out.write(json.dumps(record, default=str)); out.flush()
try:
    header = pickle.load(sys.stdin.buffer)
    sys.path[:] = header["sys_path"]
    function, arguments = pickle.load(sys.stdin.buffer)
except BaseException as exc:
    send({"status": "load_error", "error": type(exc).__name__ + ": " + str(exc)})
    sys.exit(3)
reserve = bytearray(1 << 16)  # freed on MemoryError so the report itself can be written
if header["memory_bytes"]:
    resource.setrlimit(resource.RLIMIT_AS, (header["memory_bytes"], header["memory_bytes"]))
if header["cpu_s"]:
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = int(used.ru_utime + used.ru_stime)
    resource.setrlimit(resource.RLIMIT_CPU, (spent + header["cpu_s"], spent + header["cpu_s"] + 1))
try:
    value = function(**arguments)
    if inspect.isawaitable(value):
        async def wait(awaitable):
            return await awaitable
        value = asyncio.run(wait(value))
except MemoryError:
    del reserve
    send({"status": "memory"})
    sys.exit(4)
except BaseException as exc:
    message = str(exc)
    send({"status": "error", "error": type(exc).__name__ + (": " + message if message else "")})
    sys.exit(1)
try:
    send({"status": "ok", "value": value})
except MemoryError:
    del reserve
    send({"status": "memory"})
    sys.exit(4)
"""


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """Limits for one sandboxed call. ``None`` switches a limit off."""

    timeout_s: float | None = 10.0
    cpu_s: int | None = 10
    memory_mb: int | None = 512
    env_allow: Sequence[str] = DEFAULT_ENV_ALLOW
    env: Mapping[str, str] = field(default_factory=dict)
    max_stderr_chars: int = 4000
    max_result_bytes: int | None = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("timeout_s", "cpu_s", "memory_mb", "max_result_bytes"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                raise UserError(
                    f"SandboxLimits.{name} must be a positive number or None, got {value!r}"
                )
        if self.cpu_s is not None and not isinstance(self.cpu_s, int):
            raise UserError(
                f"SandboxLimits.cpu_s must be a whole number of seconds, got {self.cpu_s!r}"
            )
        if isinstance(self.env_allow, str):
            raise UserError(
                f"SandboxLimits.env_allow must be a list of variable names, got the string "
                f"{self.env_allow!r}"
            )


@dataclass(frozen=True, kw_only=True)
class SandboxResult:
    """What happened to a sandboxed call. ``ok`` means the tool returned ``value``."""

    ok: bool
    value: Any = None
    error: str | None = None  # "Cls: message" when the tool raised or a limit stopped it
    timed_out: bool = False
    memory_exceeded: bool = False
    cpu_exceeded: bool = False
    output_exceeded: bool = False  # the result was longer than ``max_result_bytes``
    exit_code: int | None = None  # negative: killed by that signal
    stderr: str = ""
    duration_s: float = 0.0


def child_environment(limits: SandboxLimits) -> dict[str, str]:
    """The environment the child starts with: the allow-list from ours, plus ``limits.env``."""
    env = {name: os.environ[name] for name in limits.env_allow if name in os.environ}
    env.update(limits.env)
    return env


def run_sandboxed(
    function: Callable[..., Any],
    arguments: Mapping[str, Any] | None = None,
    limits: SandboxLimits | None = None,
    *,
    name: str | None = None,
) -> SandboxResult:
    """Call ``function(**arguments)`` in a fresh child process under ``limits``.

    Raises ``UserError`` only for caller mistakes found before the child starts (a function or
    arguments that cannot be pickled); everything the tool does is reported in the result.
    """
    limits = limits or SandboxLimits()
    label = str(name or getattr(function, "__name__", repr(function)))
    try:
        payload = pickle.dumps((function, dict(arguments or {})))
    except Exception as exc:
        raise UserError(
            f"tool {label!r} cannot run sandboxed: its function or arguments cannot be pickled "
            f"({exc}); sandboxed tools must be module-level functions with plain arguments"
        ) from exc
    header = pickle.dumps(
        {
            "sys_path": [p for p in sys.path if isinstance(p, str)],
            "memory_bytes": limits.memory_mb * 1024 * 1024 if limits.memory_mb else 0,
            "cpu_s": int(limits.cpu_s or 0),
        }
    )
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-I", "-c", _CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_environment(limits),
        start_new_session=True,  # its own process group, so a timeout kills its children too
        close_fds=True,
    )
    deadline = None if limits.timeout_s is None else start + limits.timeout_s
    cpu_used = 0.0
    try:
        stdout, stderr, stopped = _exchange(process, header + payload, limits, deadline)
        # Both pipes closed: the child is ending, or it closed them and goes on.
        if stopped is None and not _exited(process, deadline):
            stopped = "timeout"
        # Whatever ended the call, what the tool started in its process group ends with it:
        # killed before the child is reaped, while the group's id can be no one else's.
        _kill_group(process)
        cpu_used = _reap(process)
    finally:
        if process.poll() is None:  # an exception (e.g. KeyboardInterrupt) left it running
            _kill_group(process)
            process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    duration = time.monotonic() - start
    if stopped == "result":
        error = (
            f"ToolError: tool {label!r} returned more than {limits.max_result_bytes} bytes of "
            "result (SandboxLimits.max_result_bytes)"
        )
        return SandboxResult(
            ok=False,
            error=error,
            output_exceeded=True,
            exit_code=process.returncode,
            stderr=_tail(stderr, limits),
            duration_s=duration,
        )
    return _interpret(
        label,
        limits,
        stdout,
        stderr,
        process.returncode,
        timed_out=stopped == "timeout",
        duration=duration,
        cpu_used=cpu_used,
    )


def _exited(process: subprocess.Popen[bytes], deadline: float | None) -> bool:
    """Wait until the child exits (left unreaped) or ``deadline``; whether it exited."""
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    while os.waitid(os.P_PID, process.pid, flags) is None:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def _reap(process: subprocess.Popen[bytes]) -> float:
    """Reap the child, setting ``process.returncode``; returns the CPU seconds it used."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return float(usage.ru_utime + usage.ru_stime)


def _exchange(
    process: subprocess.Popen[bytes], data: bytes, limits: SandboxLimits, deadline: float | None
) -> tuple[bytes, bytes, str | None]:
    """Write ``data`` to the child's stdin while reading its stdout (the result) and stderr.

    Memory stays bounded whatever the tool writes: stdout up to ``max_result_bytes``, of stderr
    only the tail that ``max_stderr_chars`` keeps (``communicate`` held it all: 800 MB printed
    cost the parent 2.4 GB). Returns ``(stdout, stderr tail, stopped)``; ``stopped`` is
    ``"timeout"`` (the deadline passed), ``"result"`` (stdout past its limit) or ``None`` (both
    pipes closed). Stderr's tail is returned whole (up to 4 bytes a character) plus one byte,
    so that ``_tail`` can tell it was cut.
    """
    assert process.stdin is not None and process.stdout is not None
    assert process.stderr is not None
    keep = 4 * limits.max_stderr_chars + 1
    out, err = bytearray(), bytearray()
    view, written = memoryview(data), 0
    with selectors.DefaultSelector() as selector:
        os.set_blocking(process.stdin.fileno(), False)
        selector.register(process.stdin, selectors.EVENT_WRITE)
        selector.register(process.stdout, selectors.EVENT_READ, out)
        selector.register(process.stderr, selectors.EVENT_READ, err)
        while selector.get_map():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return bytes(out), bytes(err[-keep:]), "timeout"
            for key, _ in selector.select(remaining):
                if key.fileobj is process.stdin:
                    try:
                        written += os.write(key.fd, view[written : written + (1 << 16)])
                    except BrokenPipeError:  # the child stopped reading: it ends on its own
                        written = len(data)
                    if written >= len(data):
                        selector.unregister(process.stdin)
                        process.stdin.close()
                    continue
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer: bytearray = key.data
                buffer += chunk
                if buffer is out:
                    if limits.max_result_bytes is not None and len(out) > limits.max_result_bytes:
                        return b"", bytes(err[-keep:]), "result"
                elif len(err) > 2 * keep:
                    del err[:-keep]
    return bytes(out), bytes(err[-keep:]), None


def _tail(stderr_bytes: bytes, limits: SandboxLimits) -> str:
    stderr = stderr_bytes.decode(errors="replace")
    if len(stderr) > limits.max_stderr_chars:
        stderr = "...\n" + stderr[-limits.max_stderr_chars :]
    return stderr


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def _interpret(
    label: str,
    limits: SandboxLimits,
    stdout: bytes,
    stderr_bytes: bytes,
    exit_code: int,
    *,
    timed_out: bool,
    duration: float,
    cpu_used: float,
) -> SandboxResult:
    stderr = _tail(stderr_bytes, limits)
    common: dict[str, Any] = {"exit_code": exit_code, "stderr": stderr, "duration_s": duration}
    if timed_out:
        seconds = float(limits.timeout_s or 0)
        error = f"TimeoutError: tool {label!r} did not finish within {seconds} s"
        return SandboxResult(ok=False, error=error, timed_out=True, **common)
    # The kernel's signals for RLIMIT_CPU (soft, then hard) count only when the CPU time was
    # spent: a tool may kill itself or be killed by anyone else. (The rusage total can read a
    # few ms under the limit the kernel enforced: 0.995 s for 1 s.)
    if (
        exit_code in (-signal.SIGXCPU, -signal.SIGKILL)
        and limits.cpu_s
        and cpu_used >= 0.9 * limits.cpu_s
    ):
        error = f"TimeoutError: tool {label!r} exceeded its CPU limit of {limits.cpu_s} s"
        return SandboxResult(ok=False, error=error, cpu_exceeded=True, **common)
    try:
        record = json.loads(stdout.decode()) if stdout.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        record = None
    status = record.get("status") if isinstance(record, dict) else None
    if status == "memory":  # the child's own report; "MemoryError" in stderr is anyone's text
        error = f"MemoryError: tool {label!r} exceeded its memory limit of {limits.memory_mb} MB"
        return SandboxResult(ok=False, error=error, memory_exceeded=True, **common)
    if status == "ok" and exit_code == 0:
        return SandboxResult(ok=True, value=record["value"], **common)  # type: ignore[index]
    if status in ("error", "load_error"):
        return SandboxResult(ok=False, error=str(record["error"]), **common)  # type: ignore[index]
    how = f"was killed by signal {-exit_code}" if exit_code < 0 else f"exited with code {exit_code}"
    last_line = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
    error = f"ToolError: tool {label!r} {how} without a result ({last_line})"
    return SandboxResult(ok=False, error=error, **common)
