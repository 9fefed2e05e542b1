"""A grammar for an answer that is one JSON value under a JSON Schema (structured outputs).

``build_answer_constraint(schema)`` compiles the schema as given, not normalised: a tool's
arguments schema is loosened where the backend cannot enforce a keyword (``schema.py``: a valid
call is never refused), but a structured answer promises output valid against the schema by
construction, so a keyword the grammar cannot enforce (``not``, ``uniqueItems``,
``if``/``then``, an unknown ``format``, a remote ``$ref``) is a ``UserError`` naming it.
``None`` stands for OpenAI's ``json_object``: any JSON object.

The answer is written like a call's arguments (``JSON_OPTIONS``: bounded whitespace between
tokens), and its syntax object (``ANSWER_SYNTAX``) reports the whole output as the "call
branch", so the matcher's steering applies to it too: numbers end after forty digits, and near
the end of the token budget the value is closed rather than cut off.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from fncall.constrain.base import ToolSpec
from fncall.constrain.grammar import JSON_OPTIONS, WS_TERMINAL
from fncall.constrain.llguidance_backend import LLGuidanceConstraint, validate_grammar
from fncall.errors import UserError

ANY_OBJECT: dict[str, Any] = {"type": "object"}
CACHE_SIZE = 32
_CACHE: OrderedDict[str, LLGuidanceConstraint] = OrderedDict()
_CACHE_LOCK = threading.Lock()


class AnswerSyntax:
    """The ``CallSyntax`` of a JSON answer: the output is the value, from its first byte."""

    name = "json_answer"
    call_start = "{["
    string_quotes = '"'
    terminals = WS_TERMINAL

    @property
    def text_start(self) -> str:
        return "[^\\s\\S]"  # no free text: the grammar is the answer

    def calls_rules(self, tools: Sequence[ToolSpec], *, parallel: bool) -> list[str]:
        raise UserError("a JSON answer has no calls; use build_answer_constraint")

    def took_call_branch(self, text: str) -> bool:
        return True

    def took_text_branch(self, text: str) -> bool:
        return False


ANSWER_SYNTAX = AnswerSyntax()


def answer_grammar(schema: Mapping[str, Any] | None) -> str:
    """The Lark grammar (llguidance dialect) of one JSON value under ``schema``."""
    strict_options = {**JSON_OPTIONS, "lenient": False}
    embedded = {**(ANY_OBJECT if schema is None else schema), "x-guidance": strict_options}
    return "\n".join(
        ["%llguidance {}", "start: answer", f"answer: %json {json.dumps(embedded)}", ""]
    )


def build_answer_constraint(schema: Mapping[str, Any] | None) -> LLGuidanceConstraint:
    """The constraint admitting exactly the JSON values valid under ``schema`` (``None``: any
    object). Raises ``UserError`` naming what the grammar cannot enforce. Compiled grammars
    are cached by the schema's text, so a client repeating its schema pays the compile once."""
    if schema is not None and not isinstance(schema, Mapping):
        raise UserError(f"a response schema must be a JSON object, got {schema!r}")
    grammar = answer_grammar(schema)
    key = hashlib.sha256(grammar.encode()).hexdigest()
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    problem = validate_grammar(grammar)
    if problem:
        raise UserError(
            f"the grammar cannot enforce this schema: {_first_line(problem)}; remove or "
            "replace that construct (supported: type, properties, required, "
            "additionalProperties, items, prefixItems, enum, const, anyOf, allOf, local $ref, "
            "pattern, known formats, length, size and numeric bounds)"
        )
    constraint = LLGuidanceConstraint(
        grammar, syntax=ANSWER_SYNTAX, tool_names=(), require_call=True, parallel=False
    )
    with _CACHE_LOCK:
        _CACHE[key] = constraint
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return constraint


def _first_line(problem: str) -> str:
    """llguidance's message without its position prefix and grammar listing."""
    line = problem.strip().splitlines()[0] if problem.strip() else problem
    _, _, rest = line.partition(": ")
    message = rest if line.startswith("at ") and rest else line
    return message.removeprefix("failed to compile JSON schema: ")
