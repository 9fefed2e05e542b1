"""The ``pythonic`` format: calls as a Python list, BFCL's prompting style.

    [get_weather(city="Paris"), convert(amount=3.5, unit="km")]

Parsing uses Python's ``ast`` and accepts literal values only (strings, numbers, booleans, None,
lists, tuples, dicts; JSON's ``true``/``false``/``null`` too): nothing the model writes is ever
evaluated. Dotted names (``math.factorial``) are kept whole, as BFCL names them.

Nothing but ``ModelOutputError`` leaves the parser: output nested past what Python's parser and
``ast`` can take (long chains of ``-`` or ``+``, deep subscripts) is unusable output.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fncall.constrain.base import ToolSpec
from fncall.constrain.grammar import text_start_excluding
from fncall.constrain.pythonic import PY_TERMINALS, pythonic_call_rules
from fncall.errors import ModelOutputError, UserError
from fncall.formats._scan import (
    bracket_spans,
    clean_content,
    extract_json_calls,
    tools_json_lines,
)
from fncall.formats.base import BaseFormat
from fncall.formats.python_stubs import parameter_order, python_stub
from fncall.formats.registry import register_format
from fncall.types import AssistantTurn, Tool, ToolCall

_FENCE = re.compile(r"```[A-Za-z0-9_+-]*\n?(.*?)(?:```|\Z)", re.DOTALL)
# "[name(" at the start of an output: the model began a pythonic call.
_STARTS_CALL = re.compile(r"^\[\s*[A-Za-z_][\w.]*\s*\(")
# "[name(" anywhere: a bracketed span worth parsing (a list of calls starts so).
_CALL_LIST = re.compile(r"\[\s*[^\W\d][\w.]*\s*\(")
_NAMED_CONSTANTS = {
    "True": True,
    "False": False,
    "None": None,
    "true": True,
    "false": False,
    "null": None,
}


def _identifier(name: str, what: str) -> str:
    if not all(part.isidentifier() and not keyword.iskeyword(part) for part in name.split(".")):
        raise UserError(
            f"the pythonic format cannot write {what} {name!r}: it must be a Python identifier "
            "(dotted names allowed); use the 'json' format for such tools"
        )
    return name


def _literal(value: Any) -> str:
    """Python source for a JSON value, in the grammar's canonical spelling (``fncall.constrain``):
    strings double-quoted with JSON escapes (all valid in Python), ``json.dumps`` spacing."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_literal(str(k))}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"the pythonic format cannot write {value!r} (not a JSON number)")
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise UserError(f"the pythonic format cannot write the value {value!r} (not JSON)")


def _dotted_name(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):  # a loop: the chain may be thousands long
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _source(node: ast.AST, limit: int = 80) -> str:
    """The node as source, for an error message; never raises."""
    try:
        text = ast.unparse(node)
    except RecursionError:
        return f"<{type(node).__name__} nested too deeply to show>"
    return text if len(text) <= limit else text[:limit] + "..."


def _value(node: ast.expr, raw: str) -> Any:
    """A literal's value; anything that would need evaluation is refused."""
    if isinstance(node, ast.Constant) and (
        node.value is None or isinstance(node.value, bool | int | float | str)
    ):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMED_CONSTANTS:
        return _NAMED_CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        negative = False
        inner: ast.expr = node
        while isinstance(inner, ast.UnaryOp) and isinstance(inner.op, ast.USub | ast.UAdd):
            negative ^= isinstance(inner.op, ast.USub)  # a loop: "- - - 1" may be long
            inner = inner.operand
        operand = _value(inner, raw)
        if isinstance(operand, int | float) and not isinstance(operand, bool):
            return -operand if negative else operand
    if isinstance(node, ast.List | ast.Tuple):
        return [_value(element, raw) for element in node.elts]
    if isinstance(node, ast.Dict):
        out = {}
        for key, val in zip(node.keys, node.values, strict=True):
            k = None if key is None else _value(key, raw)
            if not isinstance(k, str | int | float | bool):
                raise ModelOutputError("a dict argument needs literal keys", raw=raw)
            out[str(k)] = _value(val, raw)
        return out
    raise ModelOutputError(
        f"argument value {_source(node)!r} is not a literal (only strings, numbers, "
        "booleans, None, lists and dicts are accepted)",
        raw=raw,
    )


def _calls_from_expr(
    expr: ast.expr, raw: str, positional: Mapping[str, Sequence[str]] | None = None
) -> list[ToolCall] | None:
    """Calls from ``[f(...), ...]`` or a lone ``f(...)``; ``None`` when it is something else.
    Positional arguments are refused unless ``positional`` gives the called function's
    parameter order."""
    if isinstance(expr, ast.Call):
        # A lone call without brackets may just be prose such as "Paris (France)": only a
        # clean call counts, and anything doubtful is plain text.
        try:
            return _calls_from_expr(ast.List(elts=[expr]), raw, positional)
        except ModelOutputError:
            return None
    items = expr.elts if isinstance(expr, ast.List | ast.Tuple) else []
    if not items or not all(isinstance(item, ast.Call) for item in items):
        return None
    calls = []
    for item in items:
        assert isinstance(item, ast.Call)
        name = _dotted_name(item.func)
        if name is None:
            raise ModelOutputError(f"cannot call {_source(item.func)!r}", raw=raw)
        order = (positional or {}).get(name, ())
        if len(item.args) > len(order) or any(isinstance(a, ast.Starred) for a in item.args):
            raise ModelOutputError(
                f"call {name!r} passes positional arguments; write name=value for each", raw=raw
            )
        arguments = {key: _value(arg, raw) for key, arg in zip(order, item.args, strict=False)}
        for kw in item.keywords:
            if kw.arg is None:
                raise ModelOutputError(f"call {name!r} uses **kwargs", raw=raw)
            if kw.arg in arguments:
                raise ModelOutputError(f"call {name!r} passes {kw.arg!r} twice", raw=raw)
            arguments[kw.arg] = _value(kw.value, raw)
        calls.append(ToolCall(name=name, arguments=arguments))
    return calls


def _bracketed(text: str) -> list[tuple[int, int]]:
    """Spans of balanced ``[...]`` regions (strings respected, parentheses counted), outermost
    first."""
    spans = bracket_spans(text, pairs="[]()", quotes="\"'", typed=False)
    return sorted((start, end) for start, end in spans.items() if text[start] == "[")


def _parse_expr(source: str, raw: str) -> ast.expr | None:
    try:
        return ast.parse(source.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return None
    except (RecursionError, MemoryError):  # the parser's own stack ran out
        raise ModelOutputError(
            "the output nests expressions too deeply to parse", raw=raw
        ) from None


JSON_LISTING = "You can call the following functions. Each is described by a JSON Schema:\n"


def call_instructions(where: str) -> str:
    """How to write calls, for a prompt whose tool list is ``where`` ("above" or "below")."""
    return (
        "To call functions, reply with only a Python list of calls with keyword arguments "
        "and literal values, and nothing else:\n"
        "[func_name1(param_a=value1, param_b=value2), func_name2(param=value)]\n"
        "Put one call in the list for every call the request needs, in order. Use only the "
        f"functions and parameters listed {where}. If no function fits the request, answer in "
        "plain text without calling a function."
    )


class PythonicFormat(BaseFormat):
    """``[f(a=1), g(b="x")]``; the grammar's values are Python literals
    (``fncall.constrain.pythonic``), with ``", "`` between calls and between arguments."""

    name = "pythonic"
    call_start = "["
    call_list = True
    string_quotes = "\"'"
    terminals = PY_TERMINALS
    call_markers = ("```", "[", "{")

    @property
    def text_start(self) -> str:
        # Free text may not open with "{" either. The tools are listed as JSON objects, and a
        # model used to JSON calls starts one: a "{" that the grammar took for prose then copied
        # a tool's schema back as the answer (the default model, asked "What is the weather
        # like in Paris right now?" by a LangGraph agent). Barred, its next choice is the list.
        return text_start_excluding(self.call_start + "{")

    def calls_rules(self, tools: Sequence[ToolSpec], *, parallel: bool) -> list[str]:
        calls = 'calls: "[" call (", " call)* "]"' if parallel else 'calls: "[" call "]"'
        return [calls, *pythonic_call_rules(tools)]

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        if not calls:
            return ""
        rendered = []
        for call in calls:
            args = ", ".join(
                f"{_identifier(k, 'parameter')}={_literal(v)}" for k, v in call.arguments.items()
            )
            rendered.append(f"{_identifier(call.name, 'function name')}({args})")
        return "[" + ", ".join(rendered) + "]"

    def render_tools(self, tools: Sequence[Tool]) -> str:
        return f"{JSON_LISTING}{tools_json_lines(tools)}\n\n{call_instructions('above')}"

    def parse(self, text: str) -> AssistantTurn:
        candidates: list[tuple[int, int]] = [(0, len(text))]
        candidates += [(m.start(1), m.end(1)) for m in _FENCE.finditer(text)]
        candidates += [span for span in _bracketed(text) if _CALL_LIST.match(text, span[0])]
        # What Python's parser reads stays linear in the output: nested spans are each one
        # more candidate, and 12,000 nested calls were parsed 12,000 times (2 s).
        budget = 4 * len(text) + 10_000
        for start, end in candidates:
            budget -= end - start
            if budget < 0:
                break
            expr = _parse_expr(text[start:end], text)
            calls = None if expr is None else _calls_from_expr(expr, text)
            if calls:
                content = clean_content(text[:start] + text[end:])
                return AssistantTurn(content=content, tool_calls=tuple(calls), raw=text)
        body = _FENCE.sub(lambda m: m.group(1), text).strip()
        if _STARTS_CALL.match(body):
            raise ModelOutputError(
                "the output starts a Python call list that does not parse", raw=text
            )
        return extract_json_calls(text)

    def parse_bare(self, text: str, tools: Sequence[Tool]) -> list[ToolCall] | None:
        """The calls of ``text`` when it is nothing but Python calls, with or without the list's
        brackets; positional arguments are bound in the order the prompt lists the parameters
        (``parameter_order``): a model may write ``f(2, "x")`` for ``f(a=2, b="x")``. ``None``
        for anything else (``fncall.pipeline.bare_calls`` decides whether such calls count)."""
        orders = {tool.name: self.parameter_order(tool) for tool in tools}
        body = text.strip()
        fenced = _FENCE.fullmatch(body)  # the whole answer one code block
        try:
            expr = _parse_expr(fenced.group(1) if fenced else body, text)
            return None if expr is None else _calls_from_expr(expr, text, orders)
        except ModelOutputError:
            return None

    def parameter_order(self, tool: Tool) -> list[str]:
        """The parameters in the order the prompt shows them: the JSON Schema's ``properties``."""
        properties = (
            tool.parameters.get("properties") if isinstance(tool.parameters, Mapping) else None
        )
        return [str(name) for name in properties] if isinstance(properties, Mapping) else []


class PythonicStubsFormat(PythonicFormat):
    """``pythonic`` calls, the tools shown as Python stubs (``fncall.formats.python_stubs``)
    instead of JSON Schema lines: a quarter fewer prompt tokens.

    Not the default. On the development suite it scored as well (157 vs 152 of 240 right,
    abstaining more where no function fits) and on full BFCL it took irrelevance from 73.3 to
    80.8 but non-live from 58.4 to 57.2; then the real default model, asked "What's the weather
    in Paris right now?" with ``get_weather`` offered, answered in invented prose instead of
    calling (README, "Tools as Python stubs")."""

    name = "pythonic-stubs"

    def render_tools(self, tools: Sequence[Tool]) -> str:
        stubs = "\n\n".join(python_stub(tool) for tool in tools)
        return (
            f"You can call the following Python functions:\n\n{stubs}\n\n"
            f"{call_instructions('above')}"
        )

    def parameter_order(self, tool: Tool) -> list[str]:
        return parameter_order(tool)  # the stub's: required ones first


class PythonicCompactFormat(PythonicFormat):
    """``pythonic`` calls under a leaner prompt: the instructions before the tool list, so that
    they are the same opening for every tool set and a new library (every BFCL case) finds them
    in the engine's saved prefix, and the list as compact JSON (no space after ``:`` and ``,``).

    The default of ``qwen2.5-coder-1.5b`` (``fncall.formats.auto``). On the development suite
    (240 cases) it got 195 right against 192 under ``pythonic``'s layout, with 148 instead of
    262 new prompt tokens a case (median) in 0.74x the time; on the optional-values suite 51 vs
    50 of 80. The 0.5B, asked the suite's 118-case sample, got 69 against 72 right under it, so
    it keeps ``pythonic`` (README, "The pythonic layout")."""

    name = "pythonic-compact"

    def render_tools(self, tools: Sequence[Tool]) -> str:
        return (
            f"{call_instructions('below')}\n\n{JSON_LISTING}{tools_json_lines(tools, compact=True)}"
        )


PYTHONIC = register_format(PythonicFormat())
PYTHONIC_COMPACT = register_format(PythonicCompactFormat())
PYTHONIC_STUBS = register_format(PythonicStubsFormat())
