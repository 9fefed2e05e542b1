"""The permission policy: rule precedence, the ask callback, and failing closed."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from conftest import function_tool
from fncall.errors import ConfigError
from fncall.execute import Policy, execute
from fncall.types import ToolCall

REFUND = ToolCall(name="refund_order", arguments={"order": "A1"})


def test_exact_name_beats_patterns_and_first_pattern_wins() -> None:
    policy = Policy(
        rules={"refund_*": "deny", "refund_order": "allow", "*_order": "ask"},
        default="deny",
        ask=lambda call: True,
    )
    assert policy.decision_for("refund_order") == ("allow", "refund_order")
    assert policy.decision_for("refund_all") == ("deny", "refund_*")
    assert policy.decision_for("cancel_order") == ("ask", "*_order")
    assert policy.decision_for("get_weather") == ("deny", None)


def test_a_rule_without_glob_characters_matches_only_its_name() -> None:
    policy = Policy(rules={"get": "deny"})
    assert policy.decision_for("get_weather") == ("allow", None)


def test_deny_names_the_tool_and_the_rule() -> None:
    verdict = Policy(default="deny").check(REFUND)
    assert not verdict.allowed
    assert verdict.error() == (
        "PermissionDenied: tool 'refund_order' is denied by the default rule (deny)"
    )


def test_ask_callback_receives_the_call_and_decides() -> None:
    asked = []

    def approve_small(call: ToolCall) -> bool:
        asked.append(call)
        return call.arguments["order"] == "A1"

    policy = Policy(rules={"refund_order": "ask"}, ask=approve_small)
    assert policy.check(REFUND).allowed
    refused = policy.check(ToolCall(name="refund_order", arguments={"order": "B9"}))
    assert refused.error() == (
        "PermissionDenied: call to 'refund_order' was not approved (rule 'refund_order': ask)"
    )
    assert [c.arguments["order"] for c in asked] == ["A1", "B9"]


def test_ask_fails_closed() -> None:
    def broken(call: ToolCall) -> bool:
        raise RuntimeError("no terminal")

    verdict = Policy(default="ask", ask=broken).check(REFUND)
    assert not verdict.allowed
    assert "approval callback failed: RuntimeError: no terminal" in verdict.reason
    # Only True approves: a truthy string is not a yes.
    assert not Policy(default="ask", ask=cast(Any, lambda call: "yes")).check(REFUND).allowed


def test_async_ask_callback() -> None:
    async def approve(call: ToolCall) -> bool:
        await asyncio.sleep(0)
        return True

    policy = Policy(default="ask", ask=approve)
    assert asyncio.run(policy.acheck(REFUND)).allowed
    sync_verdict = policy.check(REFUND)
    assert not sync_verdict.allowed and "use acheck()" in sync_verdict.reason


def test_executor_asks_in_call_order_and_runs_only_approved_calls() -> None:
    asked, ran = [], []

    def refund(order: str) -> str:
        ran.append(order)
        return f"refunded {order}"

    tool = function_tool("refund_order", refund, order={"type": "string"})

    def approve_all_but_b(call: ToolCall) -> bool:
        asked.append(call.arguments["order"])
        return call.arguments["order"] != "B"

    policy = Policy(rules={"refund_order": "ask"}, ask=approve_all_but_b)
    calls = [ToolCall(name="refund_order", arguments={"order": o}) for o in "ABC"]
    results = execute(calls, [tool], policy=policy)

    assert asked == ["A", "B", "C"]
    assert sorted(ran) == ["A", "C"]
    assert [r.content for r in results] == ["refunded A", None, "refunded C"]
    assert results[1].error is not None and results[1].error.startswith("PermissionDenied: ")


def test_configuration_problems_are_collected() -> None:
    with pytest.raises(ConfigError) as info:
        Policy(rules={"a": "maybe", "": "allow"}, default="ask")  # type: ignore[dict-item]
    message = str(info.value)
    assert "3 problem(s)" in message
    assert "rule 'a': decision must be one of allow, deny, ask; got 'maybe'" in message
    assert "non-empty tool name or pattern, got ''" in message
    assert "no ask callback was given" in message


def test_the_ask_callback_sees_the_validated_coerced_arguments() -> None:
    """Issue 20, item 5: the callback approved ``force="true"`` and the tool then ran with
    ``True``; approval must see exactly what runs."""
    asked: list[dict[str, Any]] = []
    ran: list[dict[str, Any]] = []

    def delete_file(path: str, force: bool) -> str:
        ran.append({"path": path, "force": force})
        return "deleted"

    tool = function_tool(
        "delete_file", delete_file, path={"type": "string"}, force={"type": "boolean"}
    )

    def approve_unforced(call: ToolCall) -> bool:
        asked.append(dict(call.arguments))
        return call.arguments.get("force") is not True

    policy = Policy(rules={"delete_file": "ask"}, ask=approve_unforced)
    call = ToolCall(name="delete_file", arguments={"path": "/etc/passwd", "force": "true"})
    [result] = execute([call], [tool], policy=policy)
    assert asked == [{"path": "/etc/passwd", "force": True}]
    assert ran == []
    assert result.error is not None and result.error.startswith("PermissionDenied")


def test_the_ask_callback_is_not_asked_about_invalid_arguments() -> None:
    asked: list[ToolCall] = []
    tool = function_tool("refund_order", lambda order: order, order={"type": "string"})
    policy = Policy(default="ask", ask=lambda call: asked.append(call) or True)
    [result] = execute([ToolCall(name="refund_order", arguments={})], [tool], policy=policy)
    assert asked == []
    assert result.error is not None and result.error.startswith("ArgumentError")


@pytest.mark.parametrize(
    "view",
    [
        lambda tools: tools.prefixed("fs"),
        lambda tools: tools.renamed({"delete_file": "tidy_up"}),
        lambda tools: tools.prefixed("fs").renamed({"fs_delete_file": "tidy_up"}),
        lambda tools: tools.filtered(["delete_file"]).prefixed("a").prefixed("b"),
    ],
)
@pytest.mark.parametrize("rule", ["delete_file", "delete_*"])
def test_deny_rules_follow_renamed_and_prefixed_views(view: Any, rule: str) -> None:
    """Issue 20, item 5: ``delete_file`` denied, yet ``fs_delete_file`` ran."""
    from fncall.tools import ToolSet

    ran: list[str] = []
    tool = function_tool("delete_file", lambda path: ran.append(path), path={"type": "string"})
    shown = view(ToolSet([tool]))
    [name] = shown.names
    assert name != "delete_file"
    [result] = execute(
        [ToolCall(name=name, arguments={"path": "/x"})], shown, policy=Policy(rules={rule: "deny"})
    )
    assert ran == []
    assert result.error == (f"PermissionDenied: tool {name!r} is denied by rule {rule!r} (deny)")


def test_the_strictest_rule_over_a_tools_names_wins() -> None:
    from fncall.tools import ToolSet

    tool = function_tool("delete_file", lambda path: path, path={"type": "string"})
    shown = ToolSet([tool]).prefixed("fs")
    policy = Policy(rules={"fs_delete_file": "allow", "delete_file": "deny"})
    [result] = execute(
        [ToolCall(name="fs_delete_file", arguments={"path": "/x"})], shown, policy=policy
    )
    assert result.error is not None and "denied by rule 'delete_file'" in result.error
    # a rule for the name shown still applies when the inner name has none
    policy = Policy(rules={"fs_delete_file": "deny"})
    [result] = execute(
        [ToolCall(name="fs_delete_file", arguments={"path": "/x"})], shown, policy=policy
    )
    assert result.error is not None and "denied by rule 'fs_delete_file'" in result.error
