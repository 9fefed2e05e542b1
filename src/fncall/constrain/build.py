"""``build_constraint``: the one entry point engines and chat models call.

Compiled grammars are cached (LRU) by a stable hash of the selected tools' names and schemas
(order-sensitive: property order is part of the grammar) plus tool_choice, parallel and syntax,
so a chat loop that passes the same tools every turn pays the compile once.
"""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from fncall.constrain.grammar import SYNTAXES, build_grammar
from fncall.constrain.llguidance_backend import LLGuidanceConstraint, validate_grammar
from fncall.errors import UserError
from fncall.types import Tool, ToolChoice
from fncall.warnings import FncallWarning

CACHE_SIZE = 64
_CACHE: OrderedDict[tuple[str, bool, bool, str], LLGuidanceConstraint] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def build_constraint(
    tools: Sequence[Tool],
    *,
    tool_choice: ToolChoice | str | Mapping[str, Any] | None = None,
    parallel_tool_calls: bool = True,
    syntax: str = "json",
) -> LLGuidanceConstraint | None:
    """The grammar that admits exactly the valid outputs for ``tools`` under ``tool_choice``.

    Returns ``None`` when nothing is to be constrained: ``tool_choice="none"``, or ``auto``
    with no tools. ``required`` and named choices need at least one selectable tool.
    ``parallel_tool_calls=False`` admits exactly one call.
    """
    if syntax not in SYNTAXES:
        raise UserError(f"unknown tool-call syntax {syntax!r}; known: {', '.join(SYNTAXES)}")
    names = [tool.name for tool in tools]
    choice = ToolChoice.parse(tool_choice, names)
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise UserError(f"tool names must be unique; repeated: {duplicates}")
    if choice.mode == "none":
        return None
    selected = choice.selected(tools)
    require_call = choice.mode == "required"
    if not selected:
        if not require_call:
            return None
        raise UserError("tool_choice requires a call, but no tools were given to call")
    specs = [(tool.name, dict(tool.parameters)) for tool in selected]
    key = (_schema_hash(specs), require_call, bool(parallel_tool_calls), syntax)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    constraint = _compile(
        specs, require_call=require_call, parallel=bool(parallel_tool_calls), syntax=syntax
    )
    with _CACHE_LOCK:
        _CACHE[key] = constraint
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return constraint


def clear_cache() -> None:
    """Forget every compiled grammar (for benchmarks measuring cold compiles)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _schema_hash(specs: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    text = json.dumps(specs, ensure_ascii=False, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _compile(
    specs: list[tuple[str, dict[str, Any]]], *, require_call: bool, parallel: bool, syntax: str
) -> LLGuidanceConstraint:
    grammar = build_grammar(specs, require_call=require_call, parallel=parallel, syntax=syntax)
    error = validate_grammar(grammar)
    if error:
        # Find the tools whose schemas the backend cannot compile; accept any object for those
        # (looser, never rejecting a valid call) and say so.
        loosened = []
        for index, (name, parameters) in enumerate(specs):
            alone = build_grammar(
                [(name, parameters)], require_call=True, parallel=False, syntax=syntax
            )
            problem = validate_grammar(alone)
            if problem:
                specs[index] = (name, {"type": "object"})
                loosened.append(f"{name!r} ({problem})")
        grammar = build_grammar(specs, require_call=require_call, parallel=parallel, syntax=syntax)
        error = validate_grammar(grammar)
        if error:
            raise UserError(f"could not build a tool-call grammar ({syntax}): {error}")
        warnings.warn(
            "these tools' argument schemas cannot be enforced and accept any object: "
            + "; ".join(loosened),
            FncallWarning,
            stacklevel=3,
        )
    return LLGuidanceConstraint(
        grammar,
        syntax=syntax,
        tool_names=tuple(name for name, _ in specs),
        require_call=require_call,
        parallel=parallel,
    )
