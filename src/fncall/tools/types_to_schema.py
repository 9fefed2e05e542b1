"""Python type hints -> JSON Schema (the draft 2020-12 subset OpenAI's function calling uses).

Nested structured types (dataclasses, TypedDicts, pydantic models) are *inlined* as plain
objects instead of being referenced through ``$defs``/``$ref``. Small models read an inline
schema in the prompt far better than a reference they must resolve in their head, and grammar
builders and validators need no reference resolution. The price is that recursive types cannot
be expressed; they are rejected with a ``SchemaError`` that names the type.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin

from fncall.errors import SchemaError
from fncall.tools.docstrings import parse_docstring_text

JsonSchema = dict[str, Any]

SUPPORTED = (
    "str, int, float, bool, None, Any, list[...], set[...], tuple[...], dict[str, ...], "
    "Optional/Union, Literal, Enum, Annotated[..., 'description'], dataclasses, TypedDict, "
    "pydantic models"
)

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_NONE_TYPES = (None, type(None))
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "not", "additionalProperties", "contains")


def type_to_schema(tp: Any, *, where: str = "type", _seen: tuple[Any, ...] = ()) -> JsonSchema:
    """The JSON Schema for a Python type hint; ``where`` names it in error messages."""
    if tp is Any or tp is object:
        return {}
    if tp in _NONE_TYPES:
        return {"type": "null"}
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is typing.Annotated:
        annotated = type_to_schema(args[0], where=where, _seen=_seen)
        for meta in args[1:]:
            description = _metadata_description(meta)
            if description:
                annotated = {**annotated, "description": description}
        return annotated
    if origin in (Required, NotRequired):
        return type_to_schema(args[0], where=where, _seen=_seen)
    if origin is Literal:
        return _enum_schema(list(args))
    if origin in (Union, types.UnionType):
        return _union_schema(args, where=where, seen=_seen)
    if origin in (list, Sequence, typing.Sequence, set, frozenset):
        schema: JsonSchema = {"type": "array"}
        if args:
            schema["items"] = type_to_schema(args[0], where=where, _seen=_seen)
        if origin in (set, frozenset):
            schema["uniqueItems"] = True
        return schema
    if origin is tuple:
        return _tuple_schema(args, where=where, seen=_seen)
    if origin in (dict, Mapping, typing.Mapping):
        if args and args[0] is not str:
            raise SchemaError(f"{where}: dict keys must be str (JSON object keys), got {args[0]!r}")
        schema = {"type": "object"}
        if args:
            schema["additionalProperties"] = type_to_schema(args[1], where=where, _seen=_seen)
        return schema
    if tp in (list, set, frozenset, tuple):
        return {"type": "array"}
    if tp is dict:
        return {"type": "object"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_schema([member.value for member in tp])
    if isinstance(tp, type) and (
        dataclasses.is_dataclass(tp) or typing.is_typeddict(tp) or _is_pydantic_model(tp)
    ):
        if tp in _seen:
            raise SchemaError(
                f"{where}: recursive type {tp.__qualname__} cannot be inlined into a tool schema; "
                "break the cycle (e.g. use dict[str, Any] for the recursive field)"
            )
        if _is_pydantic_model(tp):
            return pydantic_schema(tp, where=where)
        return _class_schema(tp, where=where, seen=(*_seen, tp))
    if isinstance(tp, str | typing.ForwardRef):
        raise SchemaError(f"{where}: unresolved forward reference {tp!r}; define the type first")
    raise SchemaError(f"{where}: unsupported type {tp!r}; supported: {SUPPORTED}")


def _metadata_description(meta: Any) -> str | None:
    if isinstance(meta, str):
        return meta
    description = getattr(meta, "description", None)  # pydantic.Field(description=...)
    return description if isinstance(description, str) else None


def _enum_schema(values: list[Any]) -> JsonSchema:
    values = [v.value if isinstance(v, enum.Enum) else v for v in values]
    schema: JsonSchema = {}
    kinds = {json_type_of(v) for v in values}
    if len(kinds) == 1 and None not in kinds:
        schema["type"] = kinds.pop()
    schema["enum"] = values
    return schema


def json_type_of(value: Any) -> str | None:
    """The JSON Schema type of a scalar value (``True`` is a boolean, not an integer); ``None``
    for anything else."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return None


def _union_schema(args: tuple[Any, ...], *, where: str, seen: tuple[Any, ...]) -> JsonSchema:
    branches = [type_to_schema(arg, where=where, _seen=seen) for arg in args]
    if any(branch == {} for branch in branches):
        return {}
    # Plain scalar branches collapse into a type list: {"type": ["integer", "null"]} reads far
    # better for a small model (and a grammar) than an anyOf of one-key objects.
    if all(set(branch) == {"type"} and isinstance(branch["type"], str) for branch in branches):
        return {"type": [branch["type"] for branch in branches]}
    return {"anyOf": branches}


def _tuple_schema(args: tuple[Any, ...], *, where: str, seen: tuple[Any, ...]) -> JsonSchema:
    if not args or args == ((),):
        return {"type": "array", "maxItems": 0} if args else {"type": "array"}
    if len(args) == 2 and args[1] is Ellipsis:
        return {"type": "array", "items": type_to_schema(args[0], where=where, _seen=seen)}
    return {
        "type": "array",
        "prefixItems": [type_to_schema(arg, where=where, _seen=seen) for arg in args],
        "minItems": len(args),
        "maxItems": len(args),
    }


def _class_schema(cls: type, *, where: str, seen: tuple[Any, ...]) -> JsonSchema:
    """A dataclass or TypedDict as an inline object; field texts come from "Attributes"."""
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:  # NameError for unresolvable forward refs, and friends
        raise SchemaError(
            f"{where}: cannot resolve the type hints of {cls.__qualname__}: {exc}"
        ) from exc
    docs = parse_docstring_text(_own_docstring(cls))
    if dataclasses.is_dataclass(cls):
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        names = list(fields)
        required = [
            n
            for n, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
    else:
        names = list(hints)
        required = [n for n in names if _typeddict_key_required(cls, n, hints[n])]
    properties: JsonSchema = {}
    for name in names:
        prop = type_to_schema(hints.get(name, Any), where=f"{where}.{name}", _seen=seen)
        if name in docs.params and "description" not in prop:
            prop = {**prop, "description": docs.params[name]}
        if dataclasses.is_dataclass(cls):
            default = fields[name].default
            if default is not dataclasses.MISSING and is_json_value(default):
                prop = {**prop, "default": json_value(default)}
        properties[name] = prop
    schema: JsonSchema = {"type": "object"}
    if docs.description:
        schema["description"] = docs.description
    schema.update(properties=properties, required=required, additionalProperties=False)
    return schema


def _own_docstring(cls: type) -> str:
    """The class's own docstring: not one inherited from ``dict``, nor a dataclass's signature."""
    doc = cls.__dict__.get("__doc__") or ""
    if dataclasses.is_dataclass(cls) and doc.startswith(f"{cls.__name__}("):
        return ""
    return inspect.cleandoc(doc)


def _typeddict_key_required(cls: type, name: str, hint: Any) -> bool:
    # Under ``from __future__ import annotations`` Python 3.11 cannot see Required/NotRequired
    # when it computes __required_keys__, so the resolved hint decides when it carries one.
    origin = get_origin(hint)
    if origin is NotRequired:
        return False
    if origin is Required:
        return True
    return name in getattr(cls, "__required_keys__", frozenset())


def _is_pydantic_model(tp: Any) -> bool:
    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover - pydantic is a dependency
        return False
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def pydantic_schema(model: Any, *, where: str = "model") -> JsonSchema:
    """A pydantic model's own JSON Schema, with ``$ref``s inlined and ``title``s removed."""
    raw = model.model_json_schema()
    defs = raw.pop("$defs", {})
    return clean_schema(raw, defs=defs, where=where)


def clean_schema(
    schema: Any, *, defs: Mapping[str, Any], where: str, _stack: tuple[str, ...] = ()
) -> Any:
    """Inline local ``$ref``s, drop ``title`` keywords and close object schemas."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        ref = schema["$ref"]
        name = ref.rsplit("/", 1)[-1]
        if not ref.startswith("#/$defs/") or name not in defs:
            raise SchemaError(f"{where}: cannot resolve schema reference {ref!r}")
        if name in _stack:
            raise SchemaError(
                f"{where}: recursive type {name} cannot be inlined into a tool schema; "
                "break the cycle (e.g. use dict[str, Any] for the recursive field)"
            )
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        target = clean_schema(defs[name], defs=defs, where=where, _stack=(*_stack, name))
        return {**target, **clean_schema(siblings, defs=defs, where=where, _stack=_stack)}
    out: JsonSchema = {}
    for key, value in schema.items():
        if key == "title":
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {
                k: clean_schema(v, defs=defs, where=where, _stack=_stack) for k, v in value.items()
            }
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [clean_schema(v, defs=defs, where=where, _stack=_stack) for v in value]
        elif key in _SUBSCHEMA_ONE:
            out[key] = clean_schema(value, defs=defs, where=where, _stack=_stack)
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    return out


def is_json_value(value: Any) -> bool:
    """Whether ``value`` can be written as a JSON ``default`` (enums count, by their value)."""
    if isinstance(value, enum.Enum):
        return is_json_value(value.value)
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, list | tuple):
        return all(is_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_json_value(v) for k, v in value.items())
    return False


def json_value(value: Any) -> Any:
    """``value`` as plain JSON data (tuples become lists, enums their values)."""
    if isinstance(value, enum.Enum):
        return json_value(value.value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


def resolve_hints(function: Callable[..., Any]) -> dict[str, Any]:
    """``get_type_hints`` with extras, raising ``SchemaError`` naming the function on failure."""
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception as exc:
        name = getattr(function, "__qualname__", repr(function))
        raise SchemaError(f"function {name}: cannot resolve its type hints: {exc}") from exc
