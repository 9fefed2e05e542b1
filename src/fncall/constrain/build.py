"""``build_constraint``: the one entry point engines and chat models call.

Compiled grammars are cached (LRU) by a stable hash of the selected tools' names and schemas
(order-sensitive: property order is part of the grammar) plus tool_choice, parallel and the
syntax object, so a chat loop that passes the same tools every turn pays the compile once. This
is the one grammar cache: chat models call ``build_constraint`` every turn and keep none.
"""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fncall.constrain.base import CallSyntax
from fncall.constrain.grammar import build_grammar, check_syntax
from fncall.constrain.llguidance_backend import LLGuidanceConstraint, validate_grammar
from fncall.errors import UserError
from fncall.types import Tool, ToolChoice, valid_unicode
from fncall.warnings import FncallWarning

# One entry (a compiled grammar and its pristine matcher) costs about 1.2 MB of RSS for 16 JSON
# tools on the Qwen2.5 vocabulary (151,936 tokens) once a call has been matched through it
# (hermes the same, pythonic 0.8 MB; grammar text ~11 KiB): 64 distinct 16-tool grammars took
# a process from 234 to 309 MB. 64 entries (~75 MB, a sixth of the default model's 470 MB
# GGUF) hold the tool sets of a server's many clients, each in its few tool_choice/parallel
# variants, and every chat loop's; a benchmark whose cases each bring new tools misses anyway,
# and a miss costs one compile (~50-100 ms for 16 tools).
CACHE_SIZE = 64
_CACHE: OrderedDict[tuple[str, bool, bool, str, int], LLGuidanceConstraint] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def build_constraint(
    tools: Sequence[Tool],
    *,
    tool_choice: ToolChoice | str | Mapping[str, Any] | None = None,
    parallel_tool_calls: bool = True,
    syntax: CallSyntax,
) -> LLGuidanceConstraint | None:
    """The grammar that admits exactly the valid outputs for ``tools`` under ``tool_choice``,
    written in ``syntax`` (a format object: ``fncall.formats.get_format(name)``).

    Returns ``None`` when nothing is to be constrained: ``tool_choice="none"``, or ``auto``
    with no tools. ``required`` and named choices need at least one selectable tool.
    ``parallel_tool_calls=False`` admits exactly one call.
    """
    check_syntax(syntax)
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
    # The syntax by name and identity: a format re-registered under the same name is another
    # grammar. The id cannot be reused while the entry lives (its constraint holds the object).
    key = (_schema_hash(specs), require_call, bool(parallel_tool_calls), syntax.name, id(syntax))
    return _cached(
        key,
        lambda: _compile(
            specs, require_call=require_call, parallel=bool(parallel_tool_calls), syntax=syntax
        ),
    )


def build_text_constraint(syntax: CallSyntax) -> LLGuidanceConstraint:
    """A grammar for a text answer in ``syntax``'s terms: free text that does not start the way
    a call does (``CallSyntax.text_start``), so no call can be written. For an answer turn whose
    prompt still lists the tools (``LocalChat(answer_with_tools=True)``)."""
    check_syntax(syntax)
    grammar = f"%llguidance {{}}\nstart: TEXT\nTEXT: /{syntax.text_start}(?s:.*)/\n"
    key = ("", False, False, syntax.name, id(syntax))  # no tools: an empty schema hash
    return _cached(
        key,
        lambda: LLGuidanceConstraint(
            grammar, syntax=syntax, tool_names=(), require_call=False, parallel=False
        ),
    )


def _cached(
    key: tuple[str, bool, bool, str, int], make: Callable[[], LLGuidanceConstraint]
) -> LLGuidanceConstraint:
    """The cached constraint under ``key``, made (outside the lock) on a miss."""
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    constraint = make()
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
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _compile(
    specs: list[tuple[str, dict[str, Any]]],
    *,
    require_call: bool,
    parallel: bool,
    syntax: CallSyntax,
) -> LLGuidanceConstraint:
    # A lone surrogate in a schema (a request's "\udfff") cannot reach llguidance: read as
    # U+FFFD, as the tokenizers read the prompt that shows the schema.
    grammar = valid_unicode(
        build_grammar(specs, require_call=require_call, parallel=parallel, syntax=syntax)
    )

    def repair(error: str) -> str:  # the error is llguidance's; each tool is tried alone
        # Find the tools whose schemas the backend cannot compile; accept any object for those
        # (looser, never rejecting a valid call) and say so.
        loosened = []
        for index, (name, parameters) in enumerate(specs):
            alone = valid_unicode(
                build_grammar(
                    [(name, parameters)], require_call=True, parallel=False, syntax=syntax
                )
            )
            problem = validate_grammar(alone)
            if problem:
                specs[index] = (name, {"type": "object"})
                loosened.append(f"{name!r} ({problem})")
        repaired = valid_unicode(
            build_grammar(specs, require_call=require_call, parallel=parallel, syntax=syntax)
        )
        problem = validate_grammar(repaired)
        if problem:
            raise UserError(f"could not build a tool-call grammar ({syntax.name}): {problem}")
        warnings.warn(
            "these tools' argument schemas cannot be enforced and accept any object: "
            + "; ".join(loosened),
            FncallWarning,
            stacklevel=2,
        )
        return repaired

    return LLGuidanceConstraint(
        grammar,
        syntax=syntax,
        tool_names=tuple(name for name, _ in specs),
        require_call=require_call,
        parallel=parallel,
        repair=repair,
    )
