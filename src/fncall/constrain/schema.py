"""Normalise a tool's JSON Schema into the subset the grammar enforces.

The grammar must never reject a value the schema accepts, so every keyword is either enforced
exactly or dropped (which only makes the grammar looser). What is kept:

- ``type`` (one or a list) with the names JSON Schema uses plus the aliases BFCL and Python
  people write (``dict``, ``float``, ``tuple``, ``int``, ``str``, ``bool``, ``list``, ``any``);
  an unknown type name becomes "any value".
- ``properties``, ``required``, ``additionalProperties`` (bool or schema), ``items``,
  ``prefixItems``, ``minItems``/``maxItems``, ``enum``, ``const``, ``anyOf`` (``oneOf`` becomes
  ``anyOf``: exclusivity is not enforced), ``minLength``/``maxLength``,
  ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum``, and local ``$ref`` into
  ``$defs``/``definitions``.
- Dropped (looser): ``format``, ``pattern``, ``allOf``, ``not``, ``if``/``then``/``else``,
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
No tool call in BFCL's data passes a list that long.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def normalize_schema(schema: Any, *, top_level: bool = False) -> dict[str, Any]:
    """The enforced subset of ``schema`` (a new dict; the input is not modified)."""
    if schema is True or schema is None:
        return {}
    if schema is False:
        return {"not": {}}  # nothing matches; llguidance understands this form
    if not isinstance(schema, Mapping):
        return {}
    out: dict[str, Any] = {}
    for defs_key in ("$defs", "definitions"):
        defs = schema.get(defs_key)
        if isinstance(defs, Mapping):
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
    for key in (*_KEPT_NUMERIC, *_KEPT_COUNTS):
        value = schema.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = value

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


def _normalize_object(schema: Mapping[str, Any], out: dict[str, Any], *, top_level: bool) -> None:
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
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
    elif isinstance(additional, Mapping):
        out["additionalProperties"] = normalize_schema(additional)
    elif additional is None and top_level and isinstance(properties, Mapping):
        out["additionalProperties"] = False


def _normalize_array(schema: Mapping[str, Any], out: dict[str, Any]) -> None:
    items = schema.get("items")
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list):
        out["prefixItems"] = [normalize_schema(s) for s in prefix]
        if items is False:
            out["items"] = False
        elif isinstance(items, Mapping):
            out["items"] = normalize_schema(items)
    elif isinstance(items, list):  # draft-07 tuple form
        out["prefixItems"] = [normalize_schema(s) for s in items]
    elif isinstance(items, Mapping):
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
