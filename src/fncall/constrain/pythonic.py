"""Lark rules for Python-literal values that follow a (normalised) JSON Schema.

The pythonic syntax (``[get_weather(city="Paris")]``) cannot reuse the backend's JSON-Schema
compiler, so this module writes the value grammar itself. Values are Python literals: strings
double-quoted, ``True``/``False``/``None``, lists ``[a, b]``, dicts ``{"k": v}``, with the same
``", "`` / ``": "`` spacing as ``json.dumps``. Enforced: types, ``enum``/``const``, properties
in schema order with ``required``, ``additionalProperties``, ``items``/``prefixItems``,
``minItems``/``maxItems``, ``anyOf``, local ``$ref``, and the string formats of
``schema.FORMAT_PATTERNS``. An undeclared key (an open object's other keys) is never one the
object declares, so a declared key always meets its own schema; in an object that declares
keys, the other keys may escape only ``"`` and ``\\`` (each key then has one spelling, and no
``\\u`` spelling of a declared name slips through). Looser than the JSON syntaxes: string
lengths and numeric bounds are not enforced. Numbers have bounded digits so that a model cannot
write them until the token limit (the JSON syntaxes bound integers through ``schema.INT_LIMIT``
and other numbers through the matcher's ``MAX_DIGIT_RUN``): an integer has at most 19 digits, a
number at most 19 before the point, 32 after it and a two-digit exponent, so it is always
finite.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fncall.constrain.base import ToolSpec
from fncall.constrain.grammar import call_choice, lark_string
from fncall.constrain.schema import FORMAT_PATTERNS

PY_TERMINALS = r"""
PY_STRING: /"([^"\\\x00-\x1f]|\\["\\\/'abfnrtv0]|\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4})*"/
PY_KEY: /"([^"\\\x00-\x1f]|\\["\\])*"/
PY_INT: /-?(0|[1-9][0-9]{0,18})/
PY_NUMBER: /-?(0|[1-9][0-9]{0,18})(\.[0-9]{1,32})?([eE][+-]?[0-9]{1,2})?/
py_any: PY_STRING | PY_NUMBER | "True" | "False" | "None" | py_any_list | py_any_dict
py_any_list: "[" (py_any (", " py_any)*)? "]"
py_any_dict: "{" (PY_STRING ": " py_any (", " PY_STRING ": " py_any)*)? "}"
"""


def python_literal(value: Any) -> str:
    """The canonical pythonic rendering of a JSON value (what the grammar admits for enums)."""
    if value is None:
        return "None"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} has no Python literal")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, Mapping):
        pairs = (
            f"{json.dumps(str(k), ensure_ascii=False)}: {python_literal(v)}"
            for k, v in value.items()
        )
        return "{" + ", ".join(pairs) + "}"
    raise ValueError(f"{value!r} is not a JSON value")


class PythonicRules:
    """Accumulates Lark rules; ``value(schema)`` returns the name of a rule for that schema."""

    def __init__(self, prefix: str, root: Mapping[str, Any]) -> None:
        self.prefix = prefix
        self.root = root
        self.lines: list[str] = []
        self._count = 0
        self._refs: dict[str, str] = {}

    def rule(self, body: str) -> str:
        self._count += 1
        name = f"{self.prefix}_{self._count}"
        self.lines.append(f"{name}: {body}")
        return name

    def other_key(self, pattern: str, declared: Sequence[str]) -> str:
        """A terminal for the keys ``pattern`` matches except the ``declared`` spellings (each
        a Lark string): a declared key is written with its own schema, never as an undeclared
        one with any value (JSON Schema's ``additionalProperties`` are the keys ``properties``
        does not name)."""
        if not declared:
            return pattern
        self._count += 1
        name = f"{self.prefix.upper()}_KEY_{self._count}"
        self.lines.append(f"{name}: {pattern} & ~({' | '.join(declared)})")
        return name

    def value(self, schema: Mapping[str, Any]) -> str:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self._ref(ref)
        if "const" in schema:
            return self._literals([schema["const"]])
        if "enum" in schema:
            return self._literals(schema["enum"])
        alternatives: list[str] = []
        if "anyOf" in schema:
            alternatives += [self.value(alt) for alt in schema["anyOf"]]
            if "type" not in schema:
                return self.rule(" | ".join(alternatives))
        types = schema.get("type")
        if types is None:
            return "py_any"
        for kind in [types] if isinstance(types, str) else types:
            alternatives.append(self._typed(kind, schema))
        return alternatives[0] if len(alternatives) == 1 else self.rule(" | ".join(alternatives))

    def _literals(self, values: list[Any]) -> str:
        rendered = []
        for value in values:
            try:
                rendered.append(lark_string(python_literal(value)))
            except ValueError:
                continue
        return self.rule(" | ".join(dict.fromkeys(rendered)) or "py_any")

    def _ref(self, ref: str) -> str:
        if ref in self._refs:
            return self._refs[ref]
        target: Any = self.root
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"))
                if isinstance(target, Mapping)
                else None
            )
        if not isinstance(target, Mapping):
            return "py_any"  # unresolvable: any value (looser, never wrong)
        self._count += 1
        name = f"{self.prefix}_{self._count}"
        self._refs[ref] = name
        self.lines.append(f"{name}: {self.value(target)}")
        return name

    def _typed(self, kind: str, schema: Mapping[str, Any]) -> str:
        if kind == "string":
            pattern = schema.get("pattern")  # only ever one of ours: ^...$, no quote inside
            if isinstance(pattern, str) and pattern in FORMAT_PATTERNS.values():
                return self.rule(f'/"{pattern[1:-1]}"/')
            return "PY_STRING"
        if kind == "integer":
            return "PY_INT"
        if kind == "number":
            return "PY_NUMBER"
        if kind == "boolean":
            return self.rule('"True" | "False"')
        if kind == "null":
            return self.rule('"None"')
        if kind == "array":
            return self._array(schema)
        return self._object(schema)

    def _array(self, schema: Mapping[str, Any]) -> str:
        prefix = [self.value(s) for s in schema.get("prefixItems", [])]
        items = schema.get("items")
        item = (
            None
            if items is False
            else self.value(items)
            if isinstance(items, Mapping)
            else "py_any"
        )
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        if prefix:  # fixed leading items, then optional rest (bounds not enforced here)
            head = ' ", " '.join(prefix)
            rest = f' (", " {item})*' if item else ""
            return self.rule(
                f'"[" {head}{rest} "]" | "[" "]"' if low == 0 else f'"[" {head}{rest} "]"'
            )
        assert item is not None
        more_low = max(low - 1, 0)
        if high is None:
            repeat = f' (", " {item}){{{more_low},}}'
        elif int(high) == 0:
            return self.rule('"[" "]"')
        elif int(high) == 1:
            repeat = ""
        else:
            repeat = f' (", " {item}){{{more_low},{int(high) - 1}}}'
        body = f'"[" {item}{repeat} "]"'
        return self.rule(body if low > 0 else f'{body} | "[" "]"')

    def _object(self, schema: Mapping[str, Any]) -> str:
        properties: Mapping[str, Any] = schema.get("properties", {})
        additional = schema.get("additionalProperties", True)
        extra = None
        if additional is not False:
            value = self.value(additional) if isinstance(additional, Mapping) else "py_any"
            names = [lark_string(python_literal(str(name))) for name in properties]
            key = self.other_key("PY_KEY", names) if names else "PY_STRING"
            extra = self.rule(f'{key} ": " {value}')
        pairs = [
            (
                self.rule(
                    f"{lark_string(json.dumps(name, ensure_ascii=False) + ': ')} {self.value(sub)}"
                ),
                name in schema.get("required", ()),
            )
            for name, sub in properties.items()
        ]
        body = self.sequence(pairs, extra)
        return self.rule(f'"{{" {body or ""} "}}"')

    def sequence(self, pairs: list[tuple[str, bool]], extra: str | None) -> str | None:
        """Items in fixed order, optional ones skippable, joined by ", "; ``extra`` may repeat at
        the end. Linear in size: ``after`` is the rest once something was written, ``first`` the
        rest while nothing was. ``None`` means "nothing" (the empty sequence)."""
        after = self.rule(f'(", " {extra})*') if extra else None
        first = self.rule(f'({extra} (", " {extra})*)?') if extra else None
        for item, required in reversed(pairs):
            tail = f" {after}" if after else ""
            if required:
                after, first = self.rule(f'", " {item}{tail}'), self.rule(f"{item}{tail}")
            else:
                new_first = f"{item}{tail} | {first}" if first else f"({item}{tail})?"
                after, first = self.rule(f'(", " {item})?{tail}'), self.rule(new_first)
        return first


def pythonic_call_rules(tools: Sequence[ToolSpec]) -> list[str]:
    """The rule ``call`` and one rule per tool: ``name(a=..., b=...)`` with keyword arguments in
    schema order and Python-literal values (the terminals of ``PY_TERMINALS``)."""
    lines = [call_choice(len(tools))]
    for index, (name, schema) in enumerate(tools):
        rules = PythonicRules(f"v{index}", schema)
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        pairs = [
            (rules.rule(f"{lark_string(prop + '=')} {rules.value(sub)}"), prop in required)
            for prop, sub in properties.items()
        ]
        extra = None
        additional = schema.get("additionalProperties", True)
        if additional is not False:
            value = rules.value(additional) if isinstance(additional, Mapping) else "py_any"
            names = [lark_string(f"{prop}=") for prop in properties]
            extra = rules.rule(f"{rules.other_key('/[A-Za-z_][A-Za-z0-9_]*=/', names)} {value}")
        body = rules.sequence(pairs, extra)
        lines += [f'call_{index}: {lark_string(name + "(")} {body or ""} ")"', *rules.lines]
    return lines
