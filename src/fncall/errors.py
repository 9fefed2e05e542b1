"""The error family: each error says who is at fault, names the bad value and what is accepted."""

from __future__ import annotations

from collections.abc import Iterable


class FncallError(Exception):
    """Base of every error fncall raises on purpose."""


class UserError(FncallError, ValueError):
    """The caller misused the API: a bad argument, a missing file, an unknown name."""


class ConfigError(UserError):
    """A configuration has problems; every problem is collected and reported at once."""

    def __init__(self, problems: Iterable[str], *, source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source} has {len(self.problems)} problem(s):\n{lines}")


class SchemaError(UserError):
    """A function or schema cannot become a tool (missing type hint, undocumented parameter)."""


class ModelOutputError(FncallError):
    """The model produced something unusable. Carries the raw text for debugging and retries."""

    def __init__(self, message: str, *, raw: str) -> None:
        self.raw = raw
        shown = raw if len(raw) <= 500 else raw[:500] + "..."
        super().__init__(f"{message}; model output was: {shown!r}")


class RunStopped(FncallError):
    """A long job (an evaluation) stopped because its model kept failing; the finished work is
    kept and the same command resumes it. The last failure is the ``__cause__``."""


class ArgumentError(FncallError):
    """Call arguments do not match the tool's schema. Lists every violation at once.

    Rendered back to the model (``"ArgumentError: ..."``) so it can correct the call.
    """

    def __init__(self, tool_name: str, problems: Iterable[str]) -> None:
        self.tool_name = tool_name
        self.problems = list(problems)
        super().__init__(f"invalid arguments for {tool_name!r}: " + "; ".join(self.problems))


class ToolError(FncallError):
    """A tool failed while running. ``str()`` is what the model reads back."""


class PermissionDenied(ToolError):
    """The permission policy refused a call."""


def describe_exception(exc: BaseException) -> str:
    """Render an exception the way the model reads it back: ``"Cls: message"``.

    Never raises: a tool's exception may come with a ``__str__`` that fails (or returns no
    string), and the caller must still get an error to report.
    """
    name = type(exc).__name__
    try:
        message = str(exc)
    except BaseException:  # the tool's own __str__, whatever it raises
        return f"{name} (its message could not be rendered)"
    return f"{name}: {message}" if message else name
