"""Validate (and safely coerce) the arguments of a tool call against the tool's JSON Schema.

Validation is done by ``jsonschema``'s Draft 2020-12 validator, compiled once per schema. Every
violation is reported at once, in one ``ArgumentError`` whose problems read like
``"unit: 'kelvin' is not one of ['celsius', 'fahrenheit']"``, so a model can fix all of them in
one retry.

Coercion (``coerce=True``) repairs only what small models get wrong in a lossless way, and only
where the schema asks for the other type: ``"3"`` -> 3 for an integer, ``"2.5"`` -> 2.5 for a
number, ``"true"``/``"false"`` -> bool for a boolean, ``3.0`` -> 3 for an integer, and a JSON
string holding an object or array where an object or array is expected (also for the whole
arguments object). ``"3.7"`` never becomes an integer, and a value that already fits is never
touched.

Validation is bounded in time whatever the schema and the value hold: patterns are matched
under a time limit, ``uniqueItems`` is linear (``fncall.tools.keywords``).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import jsonschema
import regex
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend
from referencing import Registry
from referencing.exceptions import Unresolvable

from fncall.errors import ArgumentError, SchemaError
from fncall.tools import keywords
from fncall.types import Tool

__all__ = [
    "MAX_DEPTH",
    "MAX_SCHEMA_DEPTH",
    "coerce_value",
    "schema_validator",
    "validate_arguments",
]

MAX_DEPTH = 64
"""Arguments nested deeper than this are refused (no tool needs it; recursion would)."""

MAX_SCHEMA_DEPTH = 64
"""A schema whose JSON nests deeper than this (objects and arrays) is refused: jsonschema checks
and validates by recursion, about six frames a level, and a 100-deep schema ran out of stack."""

_INTEGER = re.compile(r"[+-]?\d{1,300}")
# One way to match each string: "\d+\.?\d*" backtracked quadratically on digits then a letter.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_BOOLEANS = {"true": True, "false": False}

# Draft 2020-12 with the keywords that would otherwise run without bound on hostile input.
_Validator = extend(Draft202012Validator, keywords.validators)


def validate_arguments(tool: Tool, arguments: Any, *, coerce: bool = True) -> dict[str, Any]:
    """The arguments to call ``tool`` with, or an ``ArgumentError`` listing every violation.

    ``arguments`` should be a dict; with ``coerce`` a JSON string holding an object is accepted.
    The input is never modified; coercion works on a copy.
    """
    name = tool.name
    if coerce and isinstance(arguments, str | bytes):
        arguments = _decode_container(arguments, dict)
    if not isinstance(arguments, Mapping):
        shown = _show(arguments)
        raise ArgumentError(
            name, [f"arguments must be a JSON object of names to values, got {shown}"]
        )
    problems = _non_json_problems(arguments)
    if problems:
        raise ArgumentError(name, problems)
    schema = tool.parameters
    validator = schema_validator(schema, tool_name=name)
    value: Any = dict(arguments)
    try:
        with keywords.pattern_budget():
            if coerce:
                value = coerce_value(value, schema)
            problems = [text for error in validator.iter_errors(value) for text in _describe(error)]
    except keywords.PatternTimeout as exc:
        raise ArgumentError(name, [str(exc)]) from None
    except regex.error as exc:
        raise SchemaError(
            f"tool {name!r}: parameters schema has a pattern that does not compile: {exc}"
        ) from None
    except Unresolvable as exc:
        ref = str(getattr(exc, "ref", "") or "")
        if ref and not ref.startswith(("#", "/")):  # not a pointer into the schema itself
            raise SchemaError(
                f"tool {name!r}: parameters schema has a $ref outside the schema ({ref!r}); "
                "references to URLs or files are never fetched: put the definition under $defs "
                "and refer to it as '#/$defs/NAME'"
            ) from None
        raise SchemaError(f"tool {name!r}: parameters schema has a broken $ref: {exc}") from None
    except Exception as exc:
        # Hostile values (huge numbers against float bounds, cyclic $refs) must not crash the
        # caller: whatever jsonschema trips over is reported as an argument problem.
        raise ArgumentError(
            name, [f"arguments could not be validated: {type(exc).__name__}: {exc}"]
        ) from None
    if problems:
        raise ArgumentError(name, list(dict.fromkeys(problems)))
    return dict(value)


@functools.lru_cache(maxsize=512)
def _compiled(schema_json: str) -> Draft202012Validator:
    schema = json.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    # An empty registry: a $ref resolves inside the schema or not at all. jsonschema would
    # otherwise fetch URLs and read files a stranger's tool definition names.
    validator: Draft202012Validator = _Validator(
        schema, format_checker=Draft202012Validator.FORMAT_CHECKER, registry=Registry()
    )
    return validator


def schema_validator(schema: Mapping[str, Any], *, tool_name: str = "tool") -> Draft202012Validator:
    """The compiled validator for ``schema``, cached by content; a bad schema is a SchemaError."""
    if _depth_past(schema, MAX_SCHEMA_DEPTH):
        raise SchemaError(
            f"tool {tool_name!r}: its parameters schema is nested more than {MAX_SCHEMA_DEPTH} "
            f"levels deep (objects and arrays); flatten it with $defs and '#/$defs/NAME' $refs"
        )
    try:
        # Not sort_keys: the property order shows up in messages ("accepted: city, unit").
        key = json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"tool {tool_name!r}: its parameters schema is not JSON: {exc}") from None
    try:
        return _compiled(key)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise SchemaError(
            f"tool {tool_name!r}: invalid parameters schema at {where}: {exc.message}"
        ) from None
    except (RecursionError, ValueError) as exc:
        raise SchemaError(f"tool {tool_name!r}: unusable parameters schema: {exc}") from None


def _depth_past(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests objects and arrays more than ``limit`` deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            item = list(item.values())
        if isinstance(item, list | tuple):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in item)
    return False


def coerce_value(value: Any, schema: Any) -> Any:
    """``value`` with the safe coercions ``schema`` asks for (a new object; input untouched)."""
    if not isinstance(schema, Mapping):
        return value
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            return _coerce_union(value, schema, branches)
    types = _types(schema)
    if isinstance(value, float) and "integer" in types and "number" not in types:
        value = _coerce_scalar(value, types)  # 2.0 passes as an integer; the function wants 2
    if types and not _fits(value, types):
        value = _coerce_scalar(value, types)
    if isinstance(value, dict):
        return _coerce_object(value, schema)
    if isinstance(value, list):
        return _coerce_array(value, schema)
    return value


def _coerce_union(value: Any, schema: Mapping[str, Any], branches: list[Any]) -> Any:
    # A value that already fits a branch stays as it is; otherwise the first repair that makes
    # it fit one wins.
    if any(_branch_valid(value, branch) for branch in branches):
        return value
    base = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
    for branch in branches:
        if isinstance(branch, Mapping):
            candidate = coerce_value(value, {**base, **branch})
            if candidate is not value and _branch_valid(candidate, branch):
                return candidate
    return value


def _branch_valid(value: Any, branch: Any) -> bool:
    if not isinstance(branch, Mapping):
        return True
    try:
        return bool(_compiled(json.dumps(branch, sort_keys=True)).is_valid(value))
    except Exception:  # a $ref we cannot resolve alone: leave the decision to the full validator
        return False


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    return []


def _fits(value: Any, types: list[str]) -> bool:
    checker = Draft202012Validator.TYPE_CHECKER
    try:
        return any(checker.is_type(value, kind) for kind in types)
    except jsonschema.exceptions.UnknownType:
        return True


def _coerce_scalar(value: Any, types: list[str]) -> Any:
    if (
        isinstance(value, float)
        and "integer" in types
        and math.isfinite(value)
        and value.is_integer()
    ):
        return int(value)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if "integer" in types and _INTEGER.fullmatch(text):
        return int(text)
    if "number" in types and _NUMBER.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return int(text) if _INTEGER.fullmatch(text) else number
    if "boolean" in types and text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    if "object" in types:
        decoded = _decode_container(text, dict)
        if isinstance(decoded, dict):
            return decoded
    if "array" in types:
        decoded = _decode_container(text, list)
        if isinstance(decoded, list):
            return decoded
    return value


def _decode_container(text: str | bytes, kind: type) -> Any:
    """``text`` decoded when it is JSON of ``kind`` (an object or an array); else ``text``."""
    stripped = text.strip()
    opener = "{" if kind is dict else "["
    if not stripped or stripped[:1] not in (opener, opener.encode()):
        return text
    try:
        decoded = json.loads(stripped)
    except (ValueError, RecursionError):
        return text
    return decoded if isinstance(decoded, kind) and not _non_json_problems(decoded) else text


def _coerce_object(value: dict[Any, Any], schema: Mapping[str, Any]) -> dict[Any, Any]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    extra = schema.get("additionalProperties")
    out = {}
    for key, item in value.items():
        sub = properties.get(key, extra if isinstance(extra, Mapping) else None)
        out[key] = coerce_value(item, sub) if sub is not None else item
    return out


def _coerce_array(value: list[Any], schema: Mapping[str, Any]) -> list[Any]:
    prefix = schema.get("prefixItems")
    prefix = prefix if isinstance(prefix, list) else []
    items = schema.get("items")
    out = []
    for index, item in enumerate(value):
        sub = prefix[index] if index < len(prefix) else items
        out.append(coerce_value(item, sub) if isinstance(sub, Mapping) else item)
    return out


def _non_json_problems(arguments: Any) -> list[str]:
    """Values JSON cannot carry (objects, NaN, non-string keys) and excessive nesting, by path."""
    problems: list[str] = []
    stack: list[tuple[Any, str, int]] = [(arguments, "", 0)]
    while stack and len(problems) < 20:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            problems.append(f"{path or 'arguments'}: nested deeper than {MAX_DEPTH} levels")
            continue
        if isinstance(value, Mapping):
            for key in reversed(list(value)):
                if not isinstance(key, str):
                    problems.append(f"{path or 'arguments'}: key {_show(key)} is not a string")
                    continue
                stack.append((value[key], _join(path, key), depth + 1))
        elif isinstance(value, list | tuple):
            for index in reversed(range(len(value))):
                stack.append((value[index], f"{path}[{index}]", depth + 1))
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1024:
            problems.append(
                f"{path or 'arguments'}: an integer of {value.bit_length()} bits is too large"
            )
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{path or 'arguments'}: {value!r} is not a JSON number")
        elif value is not None and not isinstance(value, str | int | float | bool):
            problems.append(
                f"{path or 'arguments'}: {_show(value)} ({type(value).__name__}) is not JSON"
            )
    return problems


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out = f"{out}[{part}]" if isinstance(part, int) else _join(out, str(part))
    return out


def _describe(error: ValidationError) -> list[str]:
    """Readable problems: which parameter, what is wrong, what would be accepted."""
    path = _path(error.absolute_path)
    what = "property" if path else "parameter"
    prefix = f"{path}: " if path else ""
    if error.validator == "required":
        return [f"{prefix}missing required {what} {_quoted_name(error.message)}"]
    if error.validator == "additionalProperties" and error.validator_value is False:
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = list(schema.get("properties", {}))
        extras = [k for k in error.instance if k not in allowed and not _pattern_match(schema, k)]
        accepted = f" (accepted: {', '.join(allowed)})" if allowed else f" (this takes no {what}s)"
        return [f"{prefix}unexpected {what} {k!r}{accepted}" for k in extras] or [
            prefix + _short(error.message)
        ]
    if error.validator in ("anyOf", "oneOf") and error.context:
        # "x is not valid under any of the given schemas" says little; when one branch failed
        # deeper inside the value, that failure is the useful one.
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        if len(deepest.absolute_path) > len(error.absolute_path):
            return _describe(deepest)
        if all(e.validator == "type" for e in error.context):
            kinds = " or ".join(repr(e.validator_value) for e in error.context)
            return [f"{prefix}{_show(error.instance)} is not of type {kinds}"]
    return [prefix + _short(error.message)]


def _quoted_name(message: str) -> str:
    # jsonschema says "'city' is a required property"; keep its quoting of the name.
    return message.removesuffix(" is a required property")


def _pattern_match(schema: Any, key: str) -> bool:
    patterns = schema.get("patternProperties", {}) if isinstance(schema, Mapping) else {}
    if not isinstance(patterns, Mapping):
        return False
    return any(keywords.search(p, key) for p in patterns)


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[:limit] + "..."


def _show(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."
