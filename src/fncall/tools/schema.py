"""Python functions -> tools: the schema comes from type hints, the descriptions from the docstring.

Problems (a missing type hint, an undocumented parameter, no description at all) are found at
registration, not when a model first calls the tool. ``strict_docs`` decides what happens to them:
``True`` raises one ``SchemaError`` naming the function and every problem, ``"warn"`` emits a
``FncallWarning`` per problem, ``False`` stays silent. Problems that make a schema impossible
(an unsupported type, ``*args``) always raise.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_origin, overload

from fncall.errors import SchemaError, UserError
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

__all__ = ["StrictDocs", "function_parameters", "tool", "tool_from_function"]


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
        if param.name in docs.choices and "enum" not in prop:
            prop = {**prop, "enum": _typed_choices(docs.choices[param.name], prop)}
        if param.default is param.empty:
            required.append(param.name)
        elif is_json_value(param.default):
            prop = {**prop, "default": json_value(param.default)}
        properties[param.name] = prop
    schema: JsonSchema = {"type": "object", "properties": properties, "required": required}
    schema["additionalProperties"] = extra if extra != {} else True
    return schema, problems


def _typed_choices(choices: list[Any], prop: JsonSchema) -> list[Any]:
    """Docstring choices are text; give them the parameter's type when they all convert."""
    kind = prop.get("type")
    convert: Callable[[Any], Any] | None = {"integer": int, "number": float}.get(
        kind if isinstance(kind, str) else ""
    )
    if convert is None:
        return [str(c) if not isinstance(c, str) and kind == "string" else c for c in choices]
    try:
        return [convert(c) for c in choices]
    except (TypeError, ValueError):
        return choices


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
