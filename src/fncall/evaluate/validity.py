"""Well-formed outputs: did the model's answer parse, and does every call fit the offered tools?

This is the guarantee of constrained decoding, checked from the outside: an output is well
formed when it parsed, and each call names one of the case's functions with arguments that its
JSON Schema accepts as they are (strict validation, no coercion) and only parameters it declares
(a schema that lists ``properties`` and says nothing of ``additionalProperties`` is open to
JSON Schema, but a function cannot take a keyword it does not have; the grammar closes it too).
Plain text (no call) is well formed too: under ``tool_choice="auto"`` answering without a call
is allowed. Whether the call is the *right* one is the AST checker's job; this is about form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from fncall.errors import ArgumentError
from fncall.evaluate.data import Case, load_cases
from fncall.evaluate.runner import CaseResult
from fncall.tools.validation import validate_arguments
from fncall.types import ToolCall


def form_problem(case: Case, calls: Sequence[ToolCall] | None) -> str | None:
    """None when the output is well formed, else what is wrong with it."""
    if calls is None:
        return "the output did not parse"
    safe_names = {original: safe for safe, original in case.name_map.items()}
    tools = {tool.name: tool for tool in case.tools}
    for call in calls:
        tool = tools.get(safe_names.get(call.name, call.name))
        if tool is None:
            return f"{call.name!r} is not one of the offered functions"
        try:
            validate_arguments(tool, call.arguments, coerce=False)
        except ArgumentError as exc:
            return str(exc)
        declared = tool.parameters.get("properties")
        if isinstance(declared, Mapping) and "additionalProperties" not in tool.parameters:
            unknown = sorted(set(call.arguments) - set(declared))
            if unknown:
                return f"{call.name}: undeclared parameter(s) {', '.join(unknown)}"
    return None


def well_formed_counts(
    results: Iterable[CaseResult], cases: Mapping[str, Case]
) -> dict[str, tuple[int, int]]:
    """Per category: (well-formed outputs, cases checked); results without a case are skipped."""
    counts: dict[str, list[int]] = {}
    for result in results:
        case = cases.get(result.id)
        if case is None:
            continue
        row = counts.setdefault(result.category, [0, 0])
        row[0] += form_problem(case, result.calls) is None
        row[1] += 1
    return {category: (ok, n) for category, (ok, n) in counts.items()}


def cases_by_id(categories: Iterable[str], data_dir: str | Path | None) -> dict[str, Case]:
    return {case.id: case for case in load_cases(categories, data_dir=data_dir)}
