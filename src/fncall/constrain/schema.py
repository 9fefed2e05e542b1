"""Normalise a tool's JSON Schema into the subset the grammar enforces.

The grammar must never reject a value the schema accepts, so every keyword is either enforced
exactly or dropped (which only makes the grammar looser). What is kept:

- ``type`` (one or a list) with the names JSON Schema uses plus the aliases BFCL and Python
  people write (``dict``, ``float``, ``tuple``, ``int``, ``str``, ``bool``, ``list``, ``any``);
  an unknown type name becomes "any value".
- ``properties``, ``required``, ``additionalProperties`` (bool or schema), ``items``,
  ``prefixItems``, ``minItems``/``maxItems``, ``enum``, ``const``, ``anyOf`` (``oneOf`` becomes
  ``anyOf``: exclusivity is not enforced), ``minLength``/``maxLength``,
  ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum`` up to 10**18 in size (the
  backend cannot compile larger bounds; they are dropped), and local ``$ref`` into
  ``$defs``/``definitions``.
- ``format`` where the argument validator checks it and our pattern agrees with that check
  exactly: ``date`` (``YYYY-MM-DD``, a real calendar day, year 0001-9999, as
  ``datetime.date.fromisoformat``) and ``ipv4`` (four decimal octets 0-255, no leading zeros, as
  ``ipaddress.IPv4Address``). The format becomes a ``pattern`` (``FORMAT_PATTERNS``); the tests
  check the grammar against the validator value by value. Without this the grammar admitted
  ``"date": ""``, which the validator then refused (BFCL ``parallel_multiple_63``).
- Dropped (looser): other formats (the validator is looser or stricter than the backend's
  version: ``email`` is only "contains @" there, ``ipv6`` accepts an embedded IPv4 address the
  backend refuses), ``pattern``, ``allOf``, ``not``, ``if``/``then``/``else``,
  ``multipleOf``, ``uniqueItems``, ``patternProperties`` (and with it a closed
  ``additionalProperties``), ``propertyNames``, ``min/maxProperties``, ``dependent*``,
  and annotations (``description``, ``title``, ``default``, ``examples``).

Two deliberate tightenings. First, the top-level arguments object of a tool that declares
``properties`` but says nothing about ``additionalProperties`` is closed. A function cannot take
keyword arguments it does not declare, and invented parameters are the commonest small-model
error. Nested objects keep JSON Schema's default (open). Second, an array without ``maxItems``
holds at most ``MAX_ITEMS`` (64) items: small models sometimes fall into an endless list
(``[0, 0, 0, ...`` until the token limit, seen on BFCL ``parallel_multiple_52``), which would cut
the call off unparseable; with the bound the grammar closes the list and the call stays valid.
No tool call in BFCL's data passes a list that long. Third, an integer (a value whose only
numeric type is ``integer``, without ``enum`` or ``const``) stays within +-``INT_LIMIT``
(2**63 - 1024, the signed 64-bit range to within the backend's float precision) on each side
the schema leaves open, unless a bound past 10**18 had to be dropped: a small model can write an
integer's digits until the token limit (``0000...``, seen on BFCL ``parallel_18`` and
``parallel_174``), and a number of 400 digits is refused by the validator as too large, so the
call was lost; with the bound the grammar ends the number after 19 digits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

TYPE_ALIASES: dict[str, str | None] = {
    "string": "string",
    "str": "string",
    "integer": "integer",
    "int": "integer",
    "number": "number",
    "float": "number",
    "double": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "null": "null",
    "none": "null",
    "object": "object",
    "dict": "object",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "any": None,
}

_KEPT_NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_KEPT_COUNTS = ("minItems", "maxItems", "minLength", "maxLength")
MAX_ITEMS = 64
BOUND_LIMIT = 10**18
"""Numeric bounds larger than this in size are dropped: llguidance cannot compile them."""
INT_LIMIT = 2**63 - 1024
"""Integers without a bound are held to +-INT_LIMIT (the largest bounds llguidance compiles)."""

_YEAR = "(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
FORMAT_PATTERNS: dict[str, str] = {
    "date": f"^(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)$",
    "ipv4": f"^{_OCTET}(?:[.]{_OCTET}){{3}}$",
}
"""String formats the grammar enforces, as anchored patterns without backslashes; what they
match needs no escaping in a quoted string (the pythonic grammar puts them between quotes)."""


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # Plain dicts and absent keys first: schemas are nearly always dicts, and the ABC check
    # alone was a third of normalising 128 tools (``benchmarks/bench_constrain.py``).
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def normalize_schema(schema: Any, *, top_level: bool = False) -> dict[str, Any]:
    """The enforced subset of ``schema`` (a new dict; the input is not modified)."""
    if schema is True or schema is None:
        return {}
    if schema is False:
        return {"not": {}}  # nothing matches; llguidance understands this form
    if not _is_mapping(schema):
        return {}
    out: dict[str, Any] = {}
    for defs_key in ("$defs", "definitions"):
        defs = schema.get(defs_key)
        if _is_mapping(defs):
            out[defs_key] = {str(k): normalize_schema(v) for k, v in defs.items()}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        out["$ref"] = ref
        return out

    types = _normalize_types(schema.get("type"))
    if types is not None:
        out["type"] = types[0] if len(types) == 1 else types
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        out["enum"] = list(schema["enum"])
    if "const" in schema:
        out["const"] = schema["const"]
    alternatives = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(alternatives, list) and alternatives:
        out["anyOf"] = [normalize_schema(alt) for alt in alternatives]
    for key in _KEPT_COUNTS:
        value = schema.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = value
    _normalize_numeric(schema, out, types or [])
    pattern = FORMAT_PATTERNS.get(str(schema.get("format")))
    if pattern is not None and types is not None and "string" in types:
        out["pattern"] = pattern

    _normalize_object(schema, out, top_level=top_level)
    _normalize_array(schema, out)
    return out


def _normalize_types(value: Any) -> list[str] | None:
    names = value if isinstance(value, list) else [value] if isinstance(value, str) else None
    if not names:
        return None
    mapped: list[str] = []
    for name in names:
        canonical = TYPE_ALIASES.get(str(name).lower())
        if canonical is None:  # "any" or an unknown name: any value at all
            return None
        if canonical not in mapped:
            mapped.append(canonical)
    return mapped


def _normalize_numeric(schema: Mapping[str, Any], out: dict[str, Any], types: list[str]) -> None:
    dropped = False
    for key in _KEPT_NUMERIC:
        value = schema.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if abs(value) <= BOUND_LIMIT:  # also drops NaN and infinities
            out[key] = value
        else:
            dropped = True
    # No window where the schema names its values, or where a bound past it was dropped (the
    # window could then exclude every valid value, e.g. "minimum": 1e19).
    listed = "enum" in schema or "const" in schema
    if "integer" in types and "number" not in types and not listed and not dropped:
        if "minimum" not in out and "exclusiveMinimum" not in out:
            out["minimum"] = -INT_LIMIT
        if "maximum" not in out and "exclusiveMaximum" not in out:
            out["maximum"] = INT_LIMIT


def _normalize_object(schema: Mapping[str, Any], out: dict[str, Any], *, top_level: bool) -> None:
    properties = schema.get("properties")
    if _is_mapping(properties):
        out["properties"] = {str(k): normalize_schema(v) for k, v in properties.items()}
    required = schema.get("required")
    if isinstance(required, list):
        names = [str(r) for r in required]
        props = out.setdefault("properties", {})
        for name in names:  # a required name the schema forgot to declare: any value
            props.setdefault(name, {})
        out["required"] = list(dict.fromkeys(names))
    if "properties" in out and not out["properties"]:
        del out["properties"]
    if "patternProperties" in schema:
        return  # extra keys may be allowed by a pattern we do not enforce: stay open
    additional = schema.get("additionalProperties")
    if additional is False:
        out["additionalProperties"] = False
    elif _is_mapping(additional):
        out["additionalProperties"] = normalize_schema(additional)
    elif additional is None and top_level and _is_mapping(properties):
        out["additionalProperties"] = False


def _normalize_array(schema: Mapping[str, Any], out: dict[str, Any]) -> None:
    items = schema.get("items")
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list):
        out["prefixItems"] = [normalize_schema(s) for s in prefix]
        if items is False:
            out["items"] = False
        elif _is_mapping(items):
            out["items"] = normalize_schema(items)
    elif isinstance(items, list):  # draft-07 tuple form
        out["prefixItems"] = [normalize_schema(s) for s in items]
    elif _is_mapping(items):
        out["items"] = normalize_schema(items)
    is_array = out.get("type") == "array" or "items" in out or "prefixItems" in out
    if is_array and "maxItems" not in out and out.get("minItems", 0) <= MAX_ITEMS:
        out["maxItems"] = MAX_ITEMS


def arguments_schema(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised schema of a tool's arguments object (always an object)."""
    normalized = normalize_schema(parameters, top_level=True)
    if "type" not in normalized and "$ref" not in normalized and "anyOf" not in normalized:
        normalized["type"] = "object"
    return normalized
