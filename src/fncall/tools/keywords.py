"""JSON Schema keywords whose stock ``jsonschema`` versions are unbounded on hostile input.

Both a tool's schema (a stranger's MCP server) and the value checked against it (the model's
output) may be hostile, so validation must finish in bounded time whatever they hold:

- ``pattern``, ``patternProperties`` and the pattern part of ``additionalProperties`` and
  ``unevaluatedProperties`` match with the ``regex`` module under a time limit, instead of
  ``re``, which backtracks exponentially on patterns like ``^(a+)+$`` and cannot be interrupted
  (it holds the GIL: every thread of the process, a server's event loop included, waits).
  All the matching of one validation shares ``PATTERN_TIME_LIMIT_S``; past it,
  ``PatternTimeout`` is raised and the caller reports the value as invalid. The ``regex``
  module counts its limit in CPU time: where the CPU is shared with other work, the wall time
  a match may take grows in proportion (1 s of CPU took 2 s on a machine busy twice over).
- ``uniqueItems`` compares hashable canonical forms (linear) instead of every pair (quadratic
  once the items are not sortable, e.g. objects: 4,000 of them took 25 s).

``validators`` maps each keyword to its replacement, for ``jsonschema.validators.extend``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import regex
from jsonschema._utils import extras_msg, is_valid
from jsonschema.exceptions import ValidationError

__all__ = ["PATTERN_TIME_LIMIT_S", "PatternTimeout", "pattern_budget", "search", "validators"]

PATTERN_TIME_LIMIT_S = 1.0
"""Seconds (of CPU time) that all the pattern matching of one validation may take together."""

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "fncall_pattern_deadline", default=None
)


class PatternTimeout(Exception):
    """Matching a schema ``pattern`` ran past the time limit."""

    def __init__(self, pattern: str, text: str) -> None:
        self.pattern = pattern
        self.text = text
        shown = text if len(text) <= 40 else text[:40] + "..."
        super().__init__(
            f"matching {shown!r} against the pattern {pattern!r} took longer than "
            f"{PATTERN_TIME_LIMIT_S} s of CPU time (a pattern that backtracks without bound)"
        )


@contextlib.contextmanager
def pattern_budget(seconds: float = PATTERN_TIME_LIMIT_S) -> Iterator[None]:
    """All ``search`` calls inside share ``seconds`` (an enclosing budget is kept)."""
    if _deadline.get() is not None:
        yield
        return
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> Any:
    return regex.compile(pattern)


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text``, within the time left.

    Raises ``PatternTimeout`` past the limit, and ``regex.error`` for a pattern that does not
    compile.
    """
    deadline = _deadline.get()
    limit = PATTERN_TIME_LIMIT_S if deadline is None else deadline - time.monotonic()
    if limit <= 0:
        raise PatternTimeout(pattern, text)
    try:
        # concurrent: the GIL is released while matching, so other threads keep running.
        return _compile(pattern).search(text, concurrent=True, timeout=limit) is not None
    except TimeoutError:
        raise PatternTimeout(pattern, text) from None


# -- the keywords (signatures as jsonschema calls them) ------------------------------------


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> Iterator[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    for key in instance:
        if key not in properties and not any(search(p, key) for p in patterns):
            yield key


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = set(_additional(instance, schema))
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            error = "Additional properties are not allowed (%s %s unexpected)"
            yield ValidationError(error % extras_msg(sorted(extras, key=str)))


def _evaluated_keys(validator: Any, instance: Mapping[str, Any], schema: Any) -> list[str]:
    """jsonschema's ``find_evaluated_property_keys_by_schema``, matching with ``search``."""
    if validator.is_type(schema, "boolean"):
        return []
    keys: list[str] = []
    for keyword in ("$ref", "$dynamicRef"):
        ref = schema.get(keyword)
        if ref is not None:
            resolved = validator._resolver.lookup(ref)
            inner = validator.evolve(schema=resolved.contents, _resolver=resolved.resolver)
            keys.extend(_evaluated_keys(inner, instance, resolved.contents))
    properties = schema.get("properties")
    if validator.is_type(properties, "object"):
        keys += properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        subschema = schema.get(keyword)
        if subschema is not None:
            keys += (
                key
                for key, value in instance.items()
                if is_valid(validator.descend(value, subschema))
            )
    for pattern in schema.get("patternProperties", {}):
        keys += (key for key in instance if search(pattern, key))
    for key, subschema in schema.get("dependentSchemas", {}).items():
        if key in instance:
            keys += _evaluated_keys(validator, instance, subschema)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, []):
            if is_valid(validator.descend(instance, subschema)):
                keys += _evaluated_keys(validator, instance, subschema)
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            keys += _evaluated_keys(validator, instance, schema["if"])
            if "then" in schema:
                keys += _evaluated_keys(validator, instance, schema["then"])
        elif "else" in schema:
            keys += _evaluated_keys(validator, instance, schema["else"])
    return keys


def _unevaluated_properties(
    validator: Any, unevaluated: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    evaluated = set(_evaluated_keys(validator, instance, schema))
    failed = [
        key
        for key in instance
        if key not in evaluated
        and not is_valid(validator.descend(instance[key], unevaluated, path=key, schema_path=key))
    ]
    if not failed:
        return
    if unevaluated is False:
        error = "Unevaluated properties are not allowed (%s %s unexpected)"
        yield ValidationError(error % extras_msg(sorted(failed, key=str)))
    else:
        error = (
            "Unevaluated properties are not valid under the given schema "
            "(%s %s unevaluated and invalid)"
        )
        yield ValidationError(error % extras_msg(failed))


def _canonical(value: Any) -> Any:
    """A hashable form equal exactly when JSON Schema calls two values equal: ``1 == 1.0``,
    ``true != 1``, objects compare without order."""
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, Mapping):
        return ("object", frozenset((key, _canonical(item)) for key, item in value.items()))
    if isinstance(value, Sequence):
        return ("array", tuple(_canonical(item) for item in value))
    return ("value", value)


def _unique_items(
    validator: Any, unique: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for item in instance:
        key = _canonical(item)
        if key in seen:
            yield ValidationError(f"{instance!r} has non-unique elements")
            return
        seen.add(key)


validators: dict[str, Callable[..., Iterator[ValidationError]]] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "unevaluatedProperties": _unevaluated_properties,
    "uniqueItems": _unique_items,
}
