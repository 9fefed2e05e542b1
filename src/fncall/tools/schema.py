"""Python functions -> tools: the schema comes from type hints, the descriptions from the docstring.

Problems (a missing type hint, an undocumented parameter, no description at all) are found at
registration, not when a model first calls the tool. ``strict_docs`` decides what happens to them:
``True`` raises one ``SchemaError`` naming the function and every problem, ``"warn"`` emits a
``FncallWarning`` per problem, ``False`` stays silent. Problems that make a schema impossible
(an unsupported type, ``*args``) always raise.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, overload

from fncall.errors import ArgumentError, SchemaError, UserError
from fncall.tools.docstrings import parse_docstring, strip_choices
from fncall.tools.types_to_schema import (
    JsonSchema,
    is_json_value,
    json_value,
    resolve_hints,
    type_to_schema,
)
from fncall.types import Tool
from fncall.warnings import FncallWarning

StrictDocs = bool | Literal["warn"]
LOADED_MODULE_PREFIX = "fncall_user_tools_"

__all__ = [
    "StrictDocs",
    "function_parameters",
    "python_arguments",
    "tool",
    "tool_from_function",
]


def tool_from_function(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    strict_docs: StrictDocs = True,
    strict: bool = False,
) -> Tool:
    """Build a ``Tool`` whose ``function`` is ``fn`` and whose schema describes its parameters.

    ``name`` defaults to ``fn.__name__``; ``description`` to the docstring's summary and body.
    ``strict`` is OpenAI's strict-schema flag, passed through to the tool.
    """
    if isinstance(fn, Tool):
        raise UserError(f"{fn.name!r} is already a Tool; pass tool.function to rebuild it")
    if not callable(fn):
        raise UserError(f"a tool needs a callable function, got {fn!r}")
    if strict_docs not in (True, False, "warn"):
        raise UserError(f"strict_docs must be True, False or 'warn'; got {strict_docs!r}")
    label = _label(fn)
    parameters, problems = function_parameters(fn)
    docs = parse_docstring(fn)
    tool_description = description if description is not None else docs.description
    if not tool_description:
        problems.insert(0, "it has no description (write a docstring or pass description=)")
    _report(label, problems, strict_docs)
    tool_name = name or getattr(fn, "__name__", None)
    if not tool_name or tool_name == "<lambda>":
        raise SchemaError(f"function {label}: a lambda or nameless callable needs name=")
    return Tool(
        name=tool_name,
        description=tool_description,
        parameters=parameters,
        function=fn,
        strict=strict,
    )


def function_parameters(fn: Callable[..., Any]) -> tuple[JsonSchema, list[str]]:
    """The parameters schema of ``fn`` and the documentation problems found on the way."""
    label = _label(fn)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"function {label}: cannot read its signature: {exc}") from exc
    hints = resolve_hints(fn)
    docs = parse_docstring(fn)
    problems: list[str] = []
    properties: JsonSchema = {}
    required: list[str] = []
    extra: JsonSchema | bool = False
    for param in signature.parameters.values():
        where = f"function {label}, parameter {param.name!r}"
        if param.kind is param.VAR_POSITIONAL:
            raise SchemaError(
                f"{where}: *{param.name} cannot be passed by name in a tool call; "
                "use a list parameter instead"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise SchemaError(
                f"{where}: positional-only parameters cannot be passed by name in a tool call"
            )
        has_hint = param.name in hints
        if not has_hint:
            problems.append(f"parameter {param.name!r} has no type hint")
        if param.kind is param.VAR_KEYWORD:
            extra = type_to_schema(hints[param.name], where=where) if has_hint else True
            continue
        prop = type_to_schema(hints[param.name], where=where) if has_hint else {}
        doc_text = docs.params.get(param.name, "")
        # Annotated[..., "text"] is the most specific description; the docstring's entry for the
        # parameter beats a description a dataclass or model carries for itself.
        annotated = has_hint and get_origin(hints[param.name]) is Annotated
        if doc_text and not (annotated and "description" in prop):
            prop = {**prop, "description": strip_choices(doc_text)}
        elif not doc_text and "description" not in prop:
            problems.append(f"parameter {param.name!r} is not documented")
        choices = docs.choices.get(param.name)
        typed = _typed_choices(choices, prop) if choices and "enum" not in prop else None
        if typed is not None:
            prop = {**prop, "enum": typed}
        if param.default is param.empty:
            required.append(param.name)
        elif is_json_value(param.default):
            prop = {**prop, "default": json_value(param.default)}
        properties[param.name] = prop
    schema: JsonSchema = {"type": "object", "properties": properties, "required": required}
    schema["additionalProperties"] = extra if extra != {} else True
    return schema, problems


def _typed_choices(choices: list[Any], prop: JsonSchema) -> list[Any] | None:
    """Docstring choices in the parameter's type, or ``None`` when they cannot have it.

    Choices only make sense for strings and numbers (or an unconstrained parameter); "one of
    low, high" on an ``int`` is prose, not an enum the schema could ever satisfy.
    """
    kind = prop.get("type")
    if kind is None and "anyOf" not in prop:
        return choices
    converters: dict[str, Callable[[Any], Any]] = {"string": str, "integer": int, "number": float}
    convert = converters.get(kind) if isinstance(kind, str) else None
    if convert is None:
        return None
    try:
        converted = [convert(c) for c in choices]
    except (TypeError, ValueError):
        return None
    return converted if all(not isinstance(c, bool) for c in choices) else None


def _report(label: str, problems: list[str], strict_docs: StrictDocs) -> None:
    if not problems or strict_docs is False:
        return
    if strict_docs == "warn":
        for problem in problems:
            warnings.warn(f"function {label}: {problem}", FncallWarning, stacklevel=4)
        return
    raise SchemaError(
        f"function {label} cannot become a tool: "
        + "; ".join(problems)
        + " (document every parameter in the docstring, or pass strict_docs='warn' or False)"
    )


def _label(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or repr(fn)
    if module and module.startswith(LOADED_MODULE_PREFIX):  # a file fncall loaded: name the file
        code = getattr(fn, "__code__", None)
        return f"{Path(code.co_filename).name}:{qualname}" if code else qualname
    return f"{module}.{qualname}" if module and module != "__main__" else qualname


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    strict_docs: StrictDocs = True,
    strict: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict_docs: StrictDocs = True,
    strict: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a function into a ``Tool``: ``@tool`` or ``@tool(name=..., strict_docs="warn")``.

    The decorated name is bound to the ``Tool``; the original function is ``tool.function``.
    """
    if fn is not None:
        return tool_from_function(fn, strict_docs=strict_docs, strict=strict)

    def decorate(function: Callable[..., Any]) -> Tool:
        return tool_from_function(
            function, name=name, description=description, strict_docs=strict_docs, strict=strict
        )

    return decorate


def python_arguments(tool: Tool, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Validated JSON arguments turned into the Python types ``tool.function`` declares.

    JSON has no enums, tuples, sets, dataclasses or models; a function annotated with them would
    otherwise receive strings, lists and dicts. Parameters whose hints need no conversion pass
    through untouched. A value pydantic cannot convert is an ``ArgumentError``.
    """
    function = tool.function
    if function is None:
        return dict(arguments)
    try:
        hints = resolve_hints(function)
    except SchemaError:
        return dict(arguments)
    out = dict(arguments)
    problems = []
    for name, value in arguments.items():
        hint = hints.get(name)
        if hint is None or not _needs_conversion(hint):
            continue
        try:
            adapter = _adapter(hint)
        except TypeError:  # an unhashable hint (Annotated metadata): build it uncached
            adapter = _adapter.__wrapped__(hint)
        try:
            out[name] = adapter.validate_python(value)
        except Exception as exc:  # pydantic.ValidationError, or a type pydantic cannot build
            problems.append(f"{name}: cannot convert {value!r} to {_hint_name(hint)}: {exc}")
    if problems:
        raise ArgumentError(tool.name, problems)
    return out


@functools.lru_cache(maxsize=256)
def _adapter(hint: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(hint)


def _needs_conversion(hint: Any) -> bool:
    if isinstance(hint, type):
        return (
            issubclass(hint, enum.Enum | tuple | set | frozenset)
            or dataclasses.is_dataclass(hint)
            or hasattr(hint, "model_validate")
        )
    return any(_needs_conversion(arg) for arg in (get_origin(hint), *get_args(hint)) if arg)


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__qualname__", None) or repr(hint)
