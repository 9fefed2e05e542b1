"""Tools from and to JSON: OpenAI ``tools`` lists and BFCL function docs.

Imported tools are schema-only (``function is None``): they can be rendered, constrained,
validated and evaluated, not executed. A schema that contradicts itself (an enum of strings on an
array or a boolean) is repaired once here, with a warning (``fncall.tools.repair``).

BFCL function docs use their own type names (``dict``, ``float``, ``tuple``, ``any``, and Java /
JavaScript names such as ``HashMap`` or ``long``); they are mapped onto JSON Schema types, at
every nesting level. ``any`` means "no type constraint" and loses its ``type`` keyword.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fncall.errors import UserError
from fncall.tools.registry import AbstractToolSet, ToolSet
from fncall.tools.repair import repair_parameters
from fncall.types import Tool

__all__ = [
    "BFCL_TYPES",
    "bfcl_schema",
    "tool_from_bfcl",
    "tool_from_openai",
    "toolset_from_bfcl",
    "toolset_from_openai",
    "toolset_to_openai",
]

OPENAI_SHAPES = (
    "{'type': 'function', 'function': {'name': ..., 'description': ..., 'parameters': {...}}} "
    "or a bare {'name': ..., 'description': ..., 'parameters': {...}}"
)

# BFCL type name -> JSON Schema type; None means no type constraint.
BFCL_TYPES: dict[str, str | None] = {
    "dict": "object",
    "object": "object",
    "float": "number",
    "number": "number",
    "double": "number",
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "bigint": "integer",
    "string": "string",
    "str": "string",
    "char": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "arraylist": "array",
    "queue": "array",
    "stack": "array",
    "hashmap": "object",
    "hashtable": "object",
    "null": "null",
    "any": None,
}
_BFCL_SUBSCHEMAS = ("items", "additionalProperties", "not")
_BFCL_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def _load_json(data: Any, what: str) -> Any:
    """Accept parsed JSON, a JSON string, or a path to a JSON / JSON Lines file."""
    if isinstance(data, Path) or (
        isinstance(data, str) and not data.lstrip().startswith(("[", "{"))
    ):
        path = Path(data)
        if not path.is_file():
            raise UserError(
                f"{what}: no such file {str(path)!r} (pass JSON data, a JSON string or a file)"
            )
        text = path.read_text(encoding="utf-8")
        try:
            return json.loads(text)
        except ValueError:
            try:  # JSON Lines (BFCL's files)
                return [json.loads(line) for line in text.splitlines() if line.strip()]
            except ValueError as exc:
                raise UserError(
                    f"{what}: {str(path)!r} is neither JSON nor JSON Lines: {exc}"
                ) from None
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError as exc:
            raise UserError(f"{what}: the string is not valid JSON: {exc}") from None
    return data


def _entries(data: Any, what: str, key: str) -> list[Any]:
    if isinstance(data, Mapping) and isinstance(data.get(key), list):
        return list(data[key])  # {"tools": [...]} or a BFCL case {"function": [...]}
    if isinstance(data, Mapping):
        return [data]
    if isinstance(data, list | tuple):
        return list(data)
    raise UserError(f"{what}: expected a list of tools, got {type(data).__name__}")


def tool_from_openai(entry: Any, *, where: str = "tool") -> Tool:
    """One OpenAI ``tools`` entry (or a bare function dict) as a schema-only ``Tool``."""
    if not isinstance(entry, Mapping):
        raise UserError(f"{where}: expected {OPENAI_SHAPES}; got {entry!r}")
    if "function" in entry or "type" in entry:
        if entry.get("type", "function") != "function":
            raise UserError(
                f"{where}: only tools of type 'function' are supported, got {entry.get('type')!r}"
            )
        function = entry.get("function")
        if not isinstance(function, Mapping):
            raise UserError(f"{where}: 'function' must be an object; expected {OPENAI_SHAPES}")
    else:
        function = entry
    name, description = _name_and_description(
        function, where, f"the function needs a non-empty string 'name'; expected {OPENAI_SHAPES}"
    )
    parameters = function.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    if not isinstance(parameters, Mapping):
        raise UserError(
            f"{where} ({name!r}): 'parameters' must be a JSON Schema object, got {parameters!r}"
        )
    return Tool(
        name=name,
        description=description,
        parameters=dict(repair_parameters(parameters, tool_name=name)),
        strict=bool(function.get("strict", False)),
    )


def toolset_from_openai(data: Any) -> ToolSet:
    """An OpenAI ``tools`` list (parsed, a JSON string, or a file path) as a ``ToolSet``."""
    entries = _entries(_load_json(data, "OpenAI tools"), "OpenAI tools", "tools")
    return ToolSet([tool_from_openai(e, where=f"tools[{i}]") for i, e in enumerate(entries)])


def toolset_to_openai(tools: AbstractToolSet | Iterable[Tool]) -> list[dict[str, Any]]:
    """The OpenAI ``tools`` list for a tool set or a list of tools."""
    return [tool.to_openai() for tool in tools]


def bfcl_schema(schema: Any, *, where: str = "parameters") -> Any:
    """A BFCL parameter schema (any nesting level) rewritten with JSON Schema types."""
    if not isinstance(schema, Mapping):
        raise UserError(f"{where}: a schema must be an object, got {schema!r}")
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            mapped = _bfcl_type(value, where)
            if mapped is not None:
                out["type"] = mapped
        elif key == "properties":
            if not isinstance(value, Mapping):
                raise UserError(f"{where}.properties: must be an object, got {value!r}")
            out[key] = {
                name: bfcl_schema(sub, where=f"{where}.{name}") for name, sub in value.items()
            }
        elif key in _BFCL_SUBSCHEMAS and isinstance(value, Mapping):
            out[key] = bfcl_schema(value, where=f"{where}.{key}")
        elif key in _BFCL_SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [bfcl_schema(v, where=f"{where}.{key}[{i}]") for i, v in enumerate(value)]
        elif key == "required":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UserError(f"{where}.required: must be a list of names, got {value!r}")
            out[key] = list(value)
        else:
            out[key] = value
    return out


def _bfcl_type(value: Any, where: str) -> Any:
    if isinstance(value, list):  # ["string", "null"]
        mapped = [_bfcl_type(v, where) for v in value]
        return None if None in mapped else mapped
    if not isinstance(value, str) or value.lower() not in BFCL_TYPES:
        raise UserError(
            f"{where}: unknown BFCL type {value!r}; accepted: {', '.join(sorted(BFCL_TYPES))}"
        )
    return BFCL_TYPES[value.lower()]


def tool_from_bfcl(doc: Any, *, where: str = "function", warn_repairs: bool = True) -> Tool:
    """One BFCL function doc (``{"name", "description", "parameters"}``) as a schema-only ``Tool``.

    The name is kept as BFCL writes it (dots included) because the checker compares it verbatim.
    ``warn_repairs=False`` repairs a self-contradicting schema without a warning (for loading
    BFCL's own data, whose authors the warning cannot reach).
    """
    if not isinstance(doc, Mapping):
        raise UserError(
            f"{where}: expected a BFCL doc {{'name', 'description', 'parameters'}}, got {doc!r}"
        )
    name, description = _name_and_description(
        doc, where, "a BFCL function doc needs a non-empty string 'name'"
    )
    raw = doc.get("parameters")
    if raw is None:
        raw = {"type": "dict", "properties": {}}
    parameters = bfcl_schema(raw, where=f"{where} ({name!r}).parameters")
    if parameters.get("type", "object") != "object":
        raise UserError(
            f"{where} ({name!r}): parameters must be of type 'dict', got {raw.get('type')!r}"
        )
    parameters["type"] = "object"
    parameters.setdefault("properties", {})
    parameters = dict(repair_parameters(parameters, tool_name=name, warn=warn_repairs))
    return Tool(name=name, description=description, parameters=parameters)


def toolset_from_bfcl(data: Any) -> ToolSet:
    """BFCL function docs (a list, one BFCL case with ``function``, a JSON string or file) as a set.

    A JSON Lines file of BFCL cases yields the union of their functions; a name that appears twice
    with a different schema is a ``UserError``.
    """
    loaded = _load_json(data, "BFCL functions")
    if (
        isinstance(loaded, list)
        and loaded
        and all(isinstance(e, Mapping) and "function" in e and "name" not in e for e in loaded)
    ):
        loaded = [doc for case in loaded for doc in _entries(case, "BFCL case", "function")]
    toolset = ToolSet()
    for index, doc in enumerate(_entries(loaded, "BFCL functions", "function")):
        tool = tool_from_bfcl(doc, where=f"functions[{index}]")
        if tool.name in toolset:
            if toolset.get(tool.name) != tool:
                raise UserError(f"functions[{index}]: {tool.name!r} is defined twice, differently")
            continue
        toolset.add(tool)
    return toolset


def _name_and_description(entry: Mapping[str, Any], where: str, name_rule: str) -> tuple[str, str]:
    """The checked ``name`` and ``description`` shared by OpenAI and BFCL function docs."""
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise UserError(f"{where}: {name_rule}, got {name!r}")
    description = entry.get("description") or ""
    if not isinstance(description, str):
        raise UserError(f"{where} ({name!r}): 'description' must be a string, got {description!r}")
    return name, description
