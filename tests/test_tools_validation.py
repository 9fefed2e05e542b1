"""Argument validation and safe coercion, including hostile input (property-based)."""

from __future__ import annotations

import math
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_linear, best_seconds
from fncall import ArgumentError, FncallError, SchemaError, Tool
from fncall.tools import tool, validate_arguments


@tool
def get_weather(
    city: str,
    unit: Literal["celsius", "fahrenheit"] = "celsius",
    days: int = 1,
    threshold: float = 0.5,
    alerts: bool = False,
    location: dict[str, float] | None = None,
    hours: list[int] | None = None,
) -> str:
    """Weather forecast.

    Args:
        city: City name.
        unit: Temperature unit.
        days: Days ahead.
        threshold: Alert threshold.
        alerts: Include alerts.
        location: Coordinates.
        hours: Hours of the day.
    """
    return city


def problems(arguments: Any, *, coerce: bool = True, target: Tool = get_weather) -> list[str]:
    with pytest.raises(ArgumentError) as info:
        validate_arguments(target, arguments, coerce=coerce)
    assert info.value.tool_name == target.name
    return info.value.problems


def test_valid_arguments_pass_through_unchanged() -> None:
    arguments = {"city": "Paris", "unit": "fahrenheit", "threshold": 3, "hours": [1, 2]}
    result = validate_arguments(get_weather, arguments)
    assert result == arguments
    assert result is not arguments
    assert type(result["threshold"]) is int  # a JSON int is a number: never turned into 3.0


ACCEPTED = "city, unit, days, threshold, alerts, location, hours"


def test_every_violation_is_reported_at_once() -> None:
    assert problems({"unit": "kelvin", "days": "many", "foo": 1, "bar": 2}) == [
        "unit: 'kelvin' is not one of ['celsius', 'fahrenheit']",
        "days: 'many' is not of type 'integer'",
        "missing required parameter 'city'",
        f"unexpected parameter 'foo' (accepted: {ACCEPTED})",
        f"unexpected parameter 'bar' (accepted: {ACCEPTED})",
    ]


def test_nested_paths_are_readable() -> None:
    assert problems({"city": "x", "location": {"lat": "north"}, "hours": [1, "noon"]}) == [
        "location.lat: 'north' is not of type 'number'",
        "hours[1]: 'noon' is not of type 'integer'",
    ]
    assert problems({"city": "x", "location": 5}) == [
        "location: 5 is not of type 'object' or 'null'"
    ]


def test_safe_coercions() -> None:
    result = validate_arguments(
        get_weather,
        {
            "city": "Paris",
            "days": "3",
            "threshold": "2.5",
            "alerts": "true",
            "location": '{"lat": "48.8", "lon": 2.35}',
            "hours": '[6, "18"]',
        },
    )
    assert result == {
        "city": "Paris",
        "days": 3,
        "threshold": 2.5,
        "alerts": True,
        "location": {"lat": 48.8, "lon": 2.35},
        "hours": [6, 18],
    }
    assert validate_arguments(get_weather, {"city": "x", "days": 2.0})["days"] == 2
    assert type(validate_arguments(get_weather, {"city": "x", "days": 2.0})["days"]) is int
    assert validate_arguments(get_weather, '{"city": "Oslo"}') == {"city": "Oslo"}


def test_lossy_or_unasked_coercions_never_happen() -> None:
    assert problems({"city": "x", "days": "3.7"}) == ["days: '3.7' is not of type 'integer'"]
    assert problems({"city": "x", "days": 3.5}) == ["days: 3.5 is not of type 'integer'"]
    assert problems({"city": "x", "alerts": "yes"}) == ["alerts: 'yes' is not of type 'boolean'"]
    assert problems({"city": 12}) == ["city: 12 is not of type 'string'"]  # no int -> str
    assert problems({"city": "x", "threshold": "nan"}) == [
        "threshold: 'nan' is not of type 'number'"
    ]
    # a string that happens to look like a number stays a string where a string is expected
    assert validate_arguments(get_weather, {"city": "42"}) == {"city": "42"}


def test_coerce_false_is_strict() -> None:
    assert problems({"city": "x", "days": "3"}, coerce=False) == [
        "days: '3' is not of type 'integer'"
    ]
    assert problems('{"city": "x"}', coerce=False)[0].startswith("arguments must be a JSON object")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (None, "arguments must be a JSON object of names to values, got None"),
        ([1, 2], "arguments must be a JSON object of names to values, got [1, 2]"),
        ("hello", "arguments must be a JSON object of names to values, got 'hello'"),
        ({"city": float("nan")}, "city: nan is not a JSON number"),
        ({"city": {1: "a"}}, "city: key 1 is not a string"),
        ({"city": 10**400}, "city: an integer of 1329 bits is too large"),
    ],
)
def test_non_objects_and_non_json_values(arguments: Any, expected: str) -> None:
    assert problems(arguments) == [expected]


def test_non_json_python_objects_are_named() -> None:
    (problem,) = problems({"city": b"bytes"})
    assert problem == "city: b'bytes' (bytes) is not JSON"


def test_deep_nesting_is_refused_without_recursion() -> None:
    deep: Any = "x"
    for _ in range(10_000):
        deep = {"a": deep}
    (problem,) = problems({"city": "x", "location": deep})
    assert problem.endswith("nested deeper than 64 levels")


def test_schema_only_tools_and_bad_schemas() -> None:
    open_tool = Tool(name="anything", parameters={"type": "object"})
    assert validate_arguments(open_tool, {"x": [1, {"y": None}]}) == {"x": [1, {"y": None}]}
    broken = Tool(name="broken", parameters={"type": "object", "properties": {"a": {"type": 5}}})
    with pytest.raises(
        SchemaError, match="tool 'broken': invalid parameters schema at properties/a/type"
    ):
        validate_arguments(broken, {"a": 1})
    dangling = Tool(name="dangling", parameters={"properties": {"a": {"$ref": "#/$defs/Gone"}}})
    with pytest.raises(SchemaError, match="tool 'dangling': parameters schema has a broken \\$ref"):
        validate_arguments(dangling, {"a": 1})


def test_union_coercion_prefers_values_that_already_fit() -> None:
    either = Tool(
        name="either",
        parameters={
            "type": "object",
            "properties": {"v": {"anyOf": [{"type": "integer"}, {"type": "string"}]}},
        },
    )
    assert validate_arguments(either, {"v": "7"}) == {"v": "7"}
    number_or_null = Tool(
        name="n", parameters={"type": "object", "properties": {"v": {"type": ["number", "null"]}}}
    )
    assert validate_arguments(number_or_null, {"v": "1e3"}) == {"v": 1000.0}


# -- property-based: whatever arrives, only ArgumentError / FncallError come out ---------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers().map(lambda n: n * 10**350),  # huge
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.text(alphabet=st.characters(categories=("Cs", "Co", "Zs", "Mn", "So"))),
)
hostile_objects = st.sampled_from([object(), b"\xff", {1, 2}, (1, "a"), math.inf, print, Ellipsis])
values = st.recursive(
    st.one_of(json_scalars, hostile_objects),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(), st.integers()), children, max_size=4),
    ),
    max_leaves=20,
)
type_names = st.sampled_from(["string", "integer", "number", "boolean", "array", "object", "null"])
schemas = st.recursive(
    st.one_of(
        st.builds(lambda t: {"type": t}, type_names),
        st.builds(
            lambda e: {"enum": e},
            st.lists(json_scalars.filter(lambda v: v == v), min_size=1, max_size=3),
        ),
        st.just({"type": "integer", "minimum": 0, "maximum": 1.5, "multipleOf": 0.5}),
        st.just({"type": "string", "format": "email", "pattern": "^[a-z]+$", "maxLength": 5}),
        st.just({}),
    ),
    lambda children: st.one_of(
        st.builds(
            lambda props, req: {
                "type": "object",
                "properties": props,
                "required": [k for k in props if req],
                "additionalProperties": False,
            },
            st.dictionaries(st.text(max_size=5), children, max_size=3),
            st.booleans(),
        ),
        st.builds(lambda item: {"type": "array", "items": item}, children),
        st.builds(lambda a, b: {"anyOf": [a, b]}, children, children),
        st.builds(
            lambda t, c: {**c, "type": [t, "null"]} if "type" in c else c, type_names, children
        ),
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arguments=values)
def test_hostile_arguments_only_raise_argument_errors(arguments: Any) -> None:
    try:
        result = validate_arguments(get_weather, arguments)
    except ArgumentError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
    else:
        assert isinstance(result, dict) and "city" in result


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schema=schemas,
    arguments=st.dictionaries(st.text(max_size=5), values, max_size=4),
    coerce=st.booleans(),
)
def test_random_schemas_only_raise_fncall_errors(
    schema: dict[str, Any], arguments: Any, coerce: bool
) -> None:
    target = Tool(name="random", parameters=schema)
    try:
        result = validate_arguments(target, arguments, coerce=coerce)
    except FncallError:
        return
    assert isinstance(result, dict)


def test_a_ref_outside_the_schema_is_never_fetched(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 20, item 2: a hostile tool definition's ``$ref`` to a URL or a local file must not
    make fncall fetch it, nor put the file's content into the error the model reads."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from fncall.errors import SchemaError
    from fncall.tools.validation import validate_arguments
    from fncall.types import Tool

    fetched: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(self.path)
            body = b'{"type": "string"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = tmp_path / "secret.json"
    secret.write_text('{"const": "SECRET-TOKEN-1234"}')
    try:
        for ref in (f"http://127.0.0.1:{server.server_address[1]}/x.json", secret.as_uri()):
            tool = Tool(
                name="f",
                parameters={"type": "object", "properties": {"x": {"$ref": ref}}},
            )
            with pytest.raises(SchemaError, match=r"\$ref") as info:
                validate_arguments(tool, {"x": "anything"})
            assert "SECRET-TOKEN" not in str(info.value)
            assert "outside the schema" in str(info.value)
    finally:
        server.shutdown()
    assert fetched == []


EVIL = "a" * 28 + "!"  # each extra "a" doubles the time a backtracking engine takes


def _redos_cases(pattern: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (
            {"type": "object", "properties": {"x": {"type": "string", "pattern": pattern}}},
            {"x": EVIL},
        ),
        (
            {
                "type": "object",
                "patternProperties": {pattern: {"type": "string"}},
                "additionalProperties": False,
            },
            {EVIL: "v"},
        ),
        (
            {"type": "object", "properties": {"x": {"propertyNames": {"pattern": pattern}}}},
            {"x": {EVIL: 1}},
        ),
        (
            {
                "type": "object",
                "patternProperties": {pattern: True},
                "unevaluatedProperties": False,
            },
            {EVIL: "v"},
        ),
    ]


KEYWORDS = ["pattern", "patternProperties", "propertyNames", "unevaluatedProperties"]


@pytest.mark.parametrize(
    ("parameters", "arguments"),
    _redos_cases("^(a+)+$") + _redos_cases("^(a|a)*$"),
    ids=[f"{p}-{k}" for p in ("nested-plus", "alternation") for k in KEYWORDS],
)
def test_a_redos_pattern_is_bounded_in_time(
    parameters: dict[str, Any], arguments: dict[str, Any]
) -> None:
    """Issue 20, item 3: ``^(a+)+$`` against 25 ``a``s and a ``!`` took seconds (exponential,
    here 9 s with 28). The regex engine now answers that one at once, and matching that
    still backtracks (``^(a|a)*$``) stops at a time limit, the value reported invalid."""
    import time

    start, cpu = time.monotonic(), time.process_time()
    with pytest.raises(ArgumentError) as info:
        validate_arguments(Tool(name="f", parameters=parameters), arguments)
    assert time.process_time() - cpu < 1.5  # the limit is 1 s of CPU time
    assert time.monotonic() - start < 5.0  # ... however busy the machine is
    if "(a|a)" in str(parameters):
        assert "against the pattern '^(a|a)*$' took longer than 1.0 s" in str(info.value)


def test_patterns_still_match_as_before() -> None:
    parameters = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "patternProperties": {"^x-": {"type": "integer"}},
        "additionalProperties": False,
    }
    f = Tool(name="f", parameters=parameters)
    assert validate_arguments(f, {"code": "EUR", "x-n": 3}) == {"code": "EUR", "x-n": 3}
    with pytest.raises(ArgumentError) as info:
        validate_arguments(f, {"code": "euro", "x-n": "a", "other": 1})
    assert info.value.problems == [
        "code: 'euro' does not match '^[A-Z]{3}$'",
        "x-n: 'a' is not of type 'integer'",
        "unexpected parameter 'other' (accepted: code)",
    ]


NUMBER = Tool(name="f", parameters={"type": "object", "properties": {"x": {"type": "number"}}})
UNIQUE = Tool(
    name="f",
    parameters={"type": "object", "properties": {"x": {"type": "array", "uniqueItems": True}}},
)
SLOW_VALIDATION = {
    "number digits": (NUMBER, lambda n: {"x": "1" * n + "x"}, 2_000),
    "number digits and a dot": (NUMBER, lambda n: {"x": "1" * n + "." + "1" * n + "x"}, 2_000),
    "unique objects": (UNIQUE, lambda n: {"x": [{"a": i} for i in range(n)]}, 500),
    "unique lists": (UNIQUE, lambda n: {"x": [[i, [i]] for i in range(n)]}, 500),
    "unique mixed": (UNIQUE, lambda n: {"x": [i if i % 2 else {"i": i} for i in range(n)]}, 500),
}


@pytest.mark.parametrize(
    ("tool", "make", "n"), list(SLOW_VALIDATION.values()), ids=list(SLOW_VALIDATION)
)
def test_validation_time_is_linear_in_the_arguments(tool: Tool, make: Any, n: int) -> None:
    """Issue 20, item 7: four times the input may take at most 8 times as long (quadratic:
    16x)."""
    assert_linear(lambda size: validate_arguments(tool, make(size)), n)


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [(NUMBER, {"x": "1" * 8_000 + "x"}), (UNIQUE, {"x": [{"a": i} for i in range(4_000)]})],
    ids=["number of 8,000 digits", "uniqueItems over 4,000 objects"],
)
def test_the_arguments_that_took_seconds_take_a_fraction_of_one(
    tool: Tool, arguments: dict[str, Any]
) -> None:
    """Issue 20, item 7: the number-coercion regex was quadratic (8,000 digits: 2 s) and
    ``uniqueItems`` compared every pair (4,000 objects: 25 s)."""
    assert best_seconds(lambda: validate_arguments(tool, arguments)) < 0.5


def test_unique_items_keeps_json_schema_equality() -> None:
    unique = {"type": "object", "properties": {"x": {"type": "array", "uniqueItems": True}}}
    f = Tool(name="f", parameters=unique)
    for same in ([1, 1.0], [{"a": 1, "b": [2]}, {"b": [2.0], "a": 1}], [[1, "x"], [1, "x"]]):
        with pytest.raises(ArgumentError, match="non-unique"):
            validate_arguments(f, {"x": same}, coerce=False)
    for different in ([1, True], [0, False], [[1], [True]], [{"a": 1}, {"a": "1"}], ["1", 1]):
        assert validate_arguments(f, {"x": different}, coerce=False) == {"x": different}


@pytest.mark.parametrize("shape", ["properties", "anyOf", "items", "not"])
def test_a_schema_nested_too_deep_is_a_schema_error(shape: str) -> None:
    """Issue 20, item 10: a schema nested 100 deep was a RecursionError (a 500 in fncall serve);
    it is a SchemaError naming the limit, found without recursion."""
    from fncall.tools.validation import MAX_SCHEMA_DEPTH

    deep: dict[str, Any] = {"type": "string"}
    for _ in range(1_000):
        deep = {
            "properties": {"type": "object", "properties": {"a": deep}},
            "anyOf": {"anyOf": [deep]},
            "items": {"type": "array", "items": deep},
            "not": {"not": deep},
        }[shape]
    with pytest.raises(SchemaError, match=f"nested more than {MAX_SCHEMA_DEPTH} levels deep"):
        validate_arguments(
            Tool(name="deep", parameters={"type": "object", "properties": {"x": deep}}), {}
        )
