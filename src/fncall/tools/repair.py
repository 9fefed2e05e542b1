"""Repair parameter schemas that contradict themselves, once, where imported tools are built.

Schemas written by strangers (OpenAI tool lists, BFCL function docs, MCP servers) sometimes ask
for a value nothing can be: an ``enum`` of strings on an array, or ``["True", "False"]`` on a
boolean. The grammar and the argument validator would each read such a schema their own way, so
a call one of them admits the other refuses. ``repair_parameters`` rewrites the schema into the
one the author evidently meant, so the prompt, the grammar and the validator all read the same
consistent schema:

1. ``type: "array"`` with an enum of scalars: the enum describes the items. It moves onto
   ``items`` (an ``enum`` that ``items`` already has wins) and the array-level enum goes; the
   items schema is then repaired by rule 2 like any other.
2. A scalar ``type`` (``string``, ``integer``, ``number``, ``boolean``, ``null``, or a list of
   them) with enum values that are not of that type. If every such value converts exactly to a
   declared type, the values are converted: ``"1"`` -> 1 for an integer (canonical digits only:
   ``"01"`` stays text), ``"2.5"`` -> 2.5 for a number, ``"true"``/``"false"`` in any case ->
   a bool for a boolean, a number -> its JSON text for a string. Otherwise the enum values
   decide: ``type`` becomes the types of the values (``["a", "b"]`` on an integer is a string
   parameter), and the enum is kept as written.

Objects, ``const`` and enums holding lists or objects are left as they are. Each tool with
anything repaired gets one ``FncallWarning`` naming the tool, every parameter path and what
changed. A consistent schema comes back as the very same object, without a warning. Hostile
input never raises here: a part that is not a schema, an enum that is not a list, or nesting past
``MAX_SCHEMA_DEPTH`` is left as it is (the validator reports what it cannot use).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from fncall.tools.types_to_schema import json_type_of
from fncall.tools.validation import MAX_SCHEMA_DEPTH
from fncall.warnings import FncallWarning

__all__ = ["repair_parameters"]

_SCALAR_TYPES = ("string", "integer", "number", "boolean", "null")
_SUBSCHEMA_KEYS = ("items", "additionalProperties")
_SUBSCHEMA_LIST_KEYS = ("prefixItems", "anyOf", "oneOf", "allOf")
_SUBSCHEMA_MAP_KEYS = ("properties", "patternProperties", "$defs", "definitions")
_INTEGER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]{0,300})")
_NUMBER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]{0,300})(?:\.[0-9]{1,300})?(?:[eE][+-]?[0-9]{1,4})?")


def repair_parameters(
    parameters: Mapping[str, Any], *, tool_name: str, warn: bool = True
) -> Mapping[str, Any]:
    """``parameters`` with its self-contradicting enums repaired (see the module docstring).

    Returns ``parameters`` itself when nothing needed repair; otherwise a new schema (the input
    is never modified) and, with ``warn``, one ``FncallWarning`` for the tool listing each change.
    """
    changes: list[str] = []
    repaired = _repair(parameters, "", 0, changes)
    if not changes:
        return parameters
    if not warn:
        return repaired  # type: ignore[no-any-return]
    warnings.warn(
        f"tool {tool_name!r}: its parameters schema contradicted itself and was repaired: "
        + "; ".join(changes),
        FncallWarning,
        stacklevel=3,
    )
    return repaired  # type: ignore[no-any-return]


def _repair(schema: Any, path: str, depth: int, changes: list[str]) -> Any:
    """``schema`` repaired, the same object when nothing changed; ``changes`` collects what did."""
    if not isinstance(schema, Mapping) or depth > MAX_SCHEMA_DEPTH:
        return schema
    out = dict(schema)
    _move_array_enum(out, path, changes)
    _fit_enum_to_type(out, path, changes)
    for key in _SUBSCHEMA_KEYS:
        if key in out:
            where = _join(path, "[]" if key == "items" else key)
            out[key] = _repair(out[key], where, depth + 1, changes)
    for key in _SUBSCHEMA_LIST_KEYS:
        subs = out.get(key)
        if isinstance(subs, list):
            repaired = [
                _repair(sub, _join(path, f"{key}[{i}]"), depth + 1, changes)
                for i, sub in enumerate(subs)
            ]
            if any(new is not old for new, old in zip(repaired, subs, strict=True)):
                out[key] = repaired
    for key in _SUBSCHEMA_MAP_KEYS:
        subs = out.get(key)
        if isinstance(subs, Mapping):
            prefix = path if key == "properties" else _join(path, key)
            repaired_map = {
                name: _repair(sub, _join(prefix, str(name)), depth + 1, changes)
                for name, sub in subs.items()
            }
            if any(repaired_map[name] is not subs[name] for name in subs):
                out[key] = repaired_map
    return schema if _same(schema, out) else out


def _move_array_enum(schema: dict[str, Any], path: str, changes: list[str]) -> None:
    enum = schema.get("enum")
    if schema.get("type") != "array" or not _scalar_enum(enum):
        return
    items = schema.get("items", True)
    if items is True:
        items = {}
    if not isinstance(items, Mapping):  # a tuple form or not a schema: no single place for it
        return
    del schema["enum"]
    if _scalar_enum(items.get("enum")):
        changes.append(
            f"{_shown(path)}: dropped the array's enum {_brief(enum)} (its items' enum stays)"
        )
    else:
        schema["items"] = {**items, "enum": list(enum)}
        changes.append(
            f"{_shown(path)}: moved the enum {_brief(enum)} from the array onto its items"
        )


def _fit_enum_to_type(schema: dict[str, Any], path: str, changes: list[str]) -> None:
    enum = schema.get("enum")
    declared = schema.get("type")
    types = [declared] if isinstance(declared, str) else declared
    if not _scalar_enum(enum) or not isinstance(types, list) or not types:
        return
    if not all(t in _SCALAR_TYPES for t in types):
        return
    if all(_json_type(value, types) for value in enum):
        return
    converted = [_converted(value, types) for value in enum]
    if all(value is not _MISSING for value in converted):
        schema["enum"] = _unique(converted)
        became = _brief(schema["enum"])
        changes.append(f"{_shown(path)}: enum {_brief(enum)} became {became} for type {declared!r}")
        return
    value_types = list(dict.fromkeys(_value_type(value) for value in enum))
    schema["type"] = value_types[0] if len(value_types) == 1 else value_types
    became = schema["type"]
    changes.append(f"{_shown(path)}: type {declared!r} became {became!r} for enum {_brief(enum)}")


_MISSING = object()


def _converted(value: Any, types: list[str]) -> Any:
    """``value`` if it has a declared type, else its exact conversion to one, else ``_MISSING``."""
    if _json_type(value, types):
        return value
    for name in types:
        converted = _CONVERTERS.get(name, _no_conversion)(value)
        if converted is not _MISSING:
            return converted
    return _MISSING


def _to_integer(value: Any) -> Any:
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        return int(value)
    return _MISSING


def _to_number(value: Any) -> Any:
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        number = json.loads(value)
        return number if math.isfinite(number) else _MISSING
    return _MISSING


def _to_boolean(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return _MISSING


def _to_string(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return _MISSING
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return json.dumps(value)
        except ValueError:  # an integer past Python's 4,300-digit limit for text
            return _MISSING
    return _MISSING


def _no_conversion(value: Any) -> Any:
    return _MISSING


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "integer": _to_integer,
    "number": _to_number,
    "boolean": _to_boolean,
    "string": _to_string,
}


def _json_type(value: Any, types: list[str]) -> bool:
    """Whether ``value`` is of one of ``types`` as JSON Schema counts (1.0 is an integer)."""
    kind = _value_type(value)
    if kind in types:
        return True
    if kind == "integer" and "number" in types:
        return True
    return kind == "number" and "integer" in types and float(value).is_integer()


def _value_type(value: Any) -> str:
    return json_type_of(value) or "object"


def _scalar_enum(enum: Any) -> TypeGuard[list[Any]]:
    """A non-empty enum list holding only JSON scalars (no lists or objects)."""
    return (
        isinstance(enum, list)
        and bool(enum)
        and all(value is None or isinstance(value, str | int | float) for value in enum)
    )


def _unique(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if not any(type(value) is type(seen) and value == seen for seen in out):
            out.append(value)
    return out


def _same(before: Mapping[str, Any], after: dict[str, Any]) -> bool:
    """Whether nothing in ``after`` was replaced (children compared by identity)."""
    return before.keys() == after.keys() and all(before[k] is after[k] for k in after)


def _join(path: str, part: str) -> str:
    if part == "[]":
        return f"{path}[]"
    return f"{path}.{part}" if path else part


def _shown(path: str) -> str:
    return f"parameter {path!r}" if path else "the parameters object"


def _brief(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except ValueError:  # it holds an integer past Python's 4,300-digit limit for text
        return f"(a {type(value).__name__} too large to show)"
    return text if len(text) <= limit else text[: limit - 3] + "..."
