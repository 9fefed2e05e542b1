"""Permission policy: which tool calls may run, which are refused, which need someone's approval.

Rules map tool names or glob patterns (``"refund_*"``) to ``"allow"``, ``"deny"`` or ``"ask"``.
An exact name beats any pattern; among patterns the first listed that matches wins; a call no
rule matches gets ``default``. A tool shown under another name (a renamed or prefixed view of a
tool set) answers to every name it has: the strictest rule matching one of them wins (deny, then
ask, then allow), so ``"delete_file": "deny"`` also refuses ``fs_delete_file``. ``"ask"`` hands
the ``ToolCall`` to the ``ask`` callback (sync or async), which returns ``True`` to allow it;
the executor hands it the validated, coerced arguments, exactly what will run. The policy fails
closed: a callback that raises, or returns anything but ``True``, refuses the call.

A refused call is not an exception for the caller: the executor turns it into a ``ToolResult``
whose error (``"PermissionDenied: ..."``) names the tool and the rule, so the model can read it.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from fncall.errors import ConfigError, PermissionDenied, describe_exception
from fncall.types import ToolCall

Decision = Literal["allow", "deny", "ask"]
DECISIONS: tuple[str, ...] = ("allow", "deny", "ask")
AskCallback = Callable[[ToolCall], "bool | Awaitable[bool]"]

_GLOB_CHARS = frozenset("*?[")
_STRICTNESS = {"allow": 0, "ask": 1, "deny": 2}


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The outcome of checking one call: the decision taken and the rule that produced it."""

    allowed: bool
    decision: Decision
    rule: str | None  # the matching name or pattern; None when the default applied
    reason: str = ""  # why a call was refused, for the model to read

    def error(self) -> str | None:
        """The ``ToolResult.error`` text for a refused call, ``None`` for an allowed one."""
        return None if self.allowed else describe_exception(PermissionDenied(self.reason))


@dataclass(frozen=True, kw_only=True)
class Policy:
    """Allow / deny / ask per tool name, e.g. ``Policy(rules={"refund_order": "ask"}, ask=cb)``."""

    rules: Mapping[str, Decision] = field(default_factory=dict)
    default: Decision = "allow"
    ask: AskCallback | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.rules, Mapping):
            raise ConfigError(
                [
                    "rules must be a mapping of tool name or pattern to decision, "
                    f"got {self.rules!r}"
                ],
                source="Policy",
            )
        for pattern, decision in self.rules.items():
            if not isinstance(pattern, str) or not pattern:
                problems.append(
                    f"rule key must be a non-empty tool name or pattern, got {pattern!r}"
                )
            if decision not in DECISIONS:
                problems.append(
                    f"rule {pattern!r}: decision must be one of {', '.join(DECISIONS)}; "
                    f"got {decision!r}"
                )
        if self.default not in DECISIONS:
            problems.append(f"default must be one of {', '.join(DECISIONS)}; got {self.default!r}")
        uses_ask = self.default == "ask" or "ask" in self.rules.values()
        if uses_ask and self.ask is None:
            problems.append("a rule or the default says 'ask' but no ask callback was given")
        if self.ask is not None and not callable(self.ask):
            problems.append(f"ask must be a callable (ToolCall) -> bool, got {self.ask!r}")
        if problems:
            raise ConfigError(problems, source="Policy")
        object.__setattr__(self, "rules", dict(self.rules))

    def decision_for(
        self, tool_name: str, *, aliases: Sequence[str] = ()
    ) -> tuple[Decision, str | None]:
        """The decision for a tool and the rule that gave it (``None``: the default).

        ``aliases`` are the tool's other names (inside the views that rename or prefix it);
        the strictest rule matching any of its names wins.
        """
        matched = [m for m in map(self._rule_for, (tool_name, *aliases)) if m is not None]
        if not matched:
            return self.default, None
        return max(matched, key=lambda match: _STRICTNESS[match[0]])

    def _rule_for(self, name: str) -> tuple[Decision, str] | None:
        if name in self.rules:
            return self.rules[name], name
        for pattern, decision in self.rules.items():
            if _GLOB_CHARS & set(pattern) and fnmatch.fnmatchcase(name, pattern):
                return decision, pattern
        return None

    def check(self, call: ToolCall, *, aliases: Sequence[str] = ()) -> Verdict:
        """Decide one call, asking the callback if needed. A sync-only entry point: an async
        ``ask`` callback needs ``acheck``."""
        decision, rule = self.decision_for(call.name, aliases=aliases)
        if decision != "ask":
            return self._verdict(call, decision, rule, None)
        try:
            answer = self.ask(call)  # type: ignore[misc]
            if inspect.isawaitable(answer):
                close = getattr(answer, "close", None)
                if close is not None:
                    close()  # avoid a "coroutine was never awaited" warning
                raise TypeError("the ask callback is async; use acheck() or the async executor")
        except Exception as exc:
            return self._verdict(call, decision, rule, exc)
        return self._verdict(call, decision, rule, answer)

    async def acheck(self, call: ToolCall, *, aliases: Sequence[str] = ()) -> Verdict:
        """Decide one call; the ``ask`` callback may be sync or async."""
        decision, rule = self.decision_for(call.name, aliases=aliases)
        if decision != "ask":
            return self._verdict(call, decision, rule, None)
        try:
            answer = self.ask(call)  # type: ignore[misc]
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:
            return self._verdict(call, decision, rule, exc)
        return self._verdict(call, decision, rule, answer)

    def _verdict(
        self, call: ToolCall, decision: Decision, rule: str | None, answer: object
    ) -> Verdict:
        source = f"rule {rule!r}" if rule is not None else "the default rule"
        if decision == "allow":
            return Verdict(allowed=True, decision=decision, rule=rule)
        if decision == "deny":
            reason = f"tool {call.name!r} is denied by {source} ({decision})"
        elif isinstance(answer, Exception):
            reason = (
                f"call to {call.name!r} needs approval ({source}: ask) and the approval "
                f"callback failed: {describe_exception(answer)}"
            )
        elif answer is True:
            return Verdict(allowed=True, decision=decision, rule=rule)
        else:
            reason = f"call to {call.name!r} was not approved ({source}: ask)"
        return Verdict(allowed=False, decision=decision, rule=rule, reason=reason)
