"""Property tests: random schemas and values. Valid values are admitted, mutated ones rejected."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fncall.constrain import accepts, build_constraint
from fncall.constrain.llguidance_backend import LLGuidanceConstraint
from fncall.constrain.pythonic import python_literal
from fncall.formats import get_format
from fncall.types import Tool

SYNTAXES = ("json", "hermes", "pythonic", "llama3")

SCALARS = ["string", "integer", "number", "boolean", "null"]
NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
# DEL (U+007F) is left out: llguidance's JSON strings want it escaped (\u007f) although JSON
# allows it raw, and json.dumps(ensure_ascii=False) writes it raw (a documented limitation).
TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x7f"),
    max_size=12,
)


def compiled(tools: list[Tool], *, syntax: str = "json", **options: Any) -> LLGuidanceConstraint:
    constraint = build_constraint(tools, syntax=get_format(syntax), **options)
    assert constraint is not None
    return constraint


def schemas(depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    scalar = st.one_of(
        st.sampled_from(SCALARS).map(lambda t: {"type": t}),
        st.lists(TEXT, min_size=1, max_size=4, unique=True).map(
            lambda values: {"type": "string", "enum": values}
        ),
        st.tuples(st.sampled_from(SCALARS), st.sampled_from(SCALARS)).map(
            lambda pair: {"type": list(dict.fromkeys(pair))}
        ),
    )
    if depth == 0:
        return scalar
    inner = schemas(depth - 1)
    array = st.tuples(inner, st.integers(0, 2), st.integers(0, 3)).map(
        lambda t: {"type": "array", "items": t[0], "minItems": t[1], "maxItems": t[1] + t[2]}
    )
    return st.one_of(
        scalar,
        array,
        objects(inner),
        st.lists(inner, min_size=2, max_size=2).map(lambda alts: {"anyOf": alts}),
    )


def objects(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def build(props: dict[str, dict[str, Any]], required_flags: list[bool], closed: bool):
        names = list(props)
        schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "required": [n for n, r in zip(names, required_flags, strict=False) if r],
        }
        if closed:
            schema["additionalProperties"] = False
        return schema

    return st.builds(
        build,
        st.dictionaries(NAMES, inner, min_size=1, max_size=4),
        st.lists(st.booleans(), min_size=4, max_size=4),
        st.booleans(),
    )


def values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([values(alt) for alt in schema["anyOf"]])
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return st.one_of([_typed(kind, schema) for kind in kinds])


def _typed(kind: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if kind == "string":
        return TEXT
    if kind == "integer":
        return st.integers(-(10**6), 10**6)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False, width=32) | st.integers(-99, 99)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(
            values(schema["items"]), min_size=schema["minItems"], max_size=schema["maxItems"]
        )
    required = set(schema["required"])

    @st.composite
    def obj(draw: st.DrawFn) -> dict[str, Any]:
        out = {}
        for name, sub in schema["properties"].items():  # schema order, optional ones maybe
            if name in required or draw(st.booleans()):
                out[name] = draw(values(sub))
        return out

    return obj()


def render(syntax: str, name: str, arguments: dict[str, Any]) -> str:
    args = json.dumps(arguments, ensure_ascii=False)
    if syntax == "json":
        return f'[{{"name": "{name}", "arguments": {args}}}]'
    if syntax == "hermes":
        return f'<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'
    if syntax == "llama3":
        return f'{{"name": "{name}", "parameters": {args}}}'
    kwargs = ", ".join(f"{k}={python_literal(v)}" for k, v in arguments.items())
    return f"[{name}({kwargs})]"


TOP = objects(schemas(1)).map(lambda s: {**s, "additionalProperties": False})
COMMON = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@COMMON
@given(st.sampled_from(SYNTAXES), TOP.flatmap(lambda s: st.tuples(st.just(s), values(s))))
def test_valid_values_are_admitted(syntax: str, case: tuple[dict[str, Any], Any]) -> None:
    schema, arguments = case
    constraint = compiled(
        [Tool(name="f", parameters=schema)], tool_choice="required", syntax=syntax
    )
    assert accepts(constraint, render(syntax, "f", arguments))


def _wrong_value(sub: dict[str, Any]) -> Any:
    """A value the sub-schema surely rejects, or None when none is easy to name."""
    kinds = sub.get("type")
    if "enum" in sub:
        return "\u00a7" + "".join(sub["enum"])  # longer than and different from every member
    if kinds is None:
        return None
    kinds = kinds if isinstance(kinds, list) else [kinds]
    for candidate, kind in (({"nested": 1}, "object"), ("text", "string"), ([1], "array")):
        if kind not in kinds:
            return candidate
    return None


@COMMON
@given(
    st.sampled_from(SYNTAXES),
    TOP.flatmap(lambda s: st.tuples(st.just(s), values(s))),
    st.sampled_from(["extra", "missing", "wrong type"]),
    st.data(),
)
def test_mutated_values_are_rejected(
    syntax: str, case: tuple[dict[str, Any], Any], mutation: str, data: st.DataObject
) -> None:
    schema, arguments = case
    arguments = dict(arguments)
    if mutation == "extra":
        arguments["zz_not_declared"] = 1
    elif mutation == "missing":
        present = [name for name in schema["required"] if name in arguments]
        if not present:
            return
        del arguments[data.draw(st.sampled_from(present))]
    else:
        candidates = [(n, _wrong_value(schema["properties"][n])) for n in arguments]
        candidates = [(n, v) for n, v in candidates if v is not None]
        if not candidates:
            return
        name, wrong = data.draw(st.sampled_from(candidates))
        arguments[name] = wrong
    constraint = compiled([Tool(name="f", parameters=schema)], syntax=syntax)
    assert not accepts(constraint, render(syntax, "f", arguments))
