"""Schemas from Python functions: type hints, docstrings (three styles), defaults, strictness."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

import pydantic
import pytest

from fncall import ArgumentError, SchemaError, Tool
from fncall.tools import python_arguments, tool, tool_from_function, validate_arguments
from fncall.warnings import FncallWarning


def params(fn: Any, **options: Any) -> dict[str, Any]:
    return dict(tool_from_function(fn, **options).parameters)


def test_scalars_defaults_and_required() -> None:
    def book(city: str, nights: int, price: float, pets: bool = False, note: str = "") -> str:
        """Book a hotel.

        Args:
            city: Where to stay.
            nights: How many nights.
            price: Max price per night.
            pets: Whether pets come along.
            note: Free text for the hotel.
        """
        return city

    result = tool_from_function(book)
    assert result.name == "book"
    assert result.description == "Book a hotel."
    assert result.function is book
    assert result.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "Where to stay."},
            "nights": {"type": "integer", "description": "How many nights."},
            "price": {"type": "number", "description": "Max price per night."},
            "pets": {
                "type": "boolean",
                "description": "Whether pets come along.",
                "default": False,
            },
            "note": {"type": "string", "description": "Free text for the hotel.", "default": ""},
        },
        "required": ["city", "nights", "price"],
        "additionalProperties": False,
    }


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


def test_containers_unions_literals_enums_annotated() -> None:
    def f(
        tags: list[str],
        pair: tuple[int, str],
        many: tuple[float, ...],
        scores: dict[str, float],
        maybe: Optional[int],  # noqa: UP045 - the old spelling must work too
        either: int | str,
        mode: Literal["fast", "slow"],
        unit: Unit = Unit.CELSIUS,
        label: Annotated[str, "A short label"] = "x",
        anything: Any = None,
        unique: set[int] | None = None,
    ) -> None:
        """F.

        Args:
            tags: t
            pair: p
            many: m
            scores: s
            maybe: m
            either: e
            mode: m
            unit: u
            anything: a
            unique: u
        """

    props = params(f)["properties"]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "description": "t"}
    assert props["pair"] == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "minItems": 2,
        "maxItems": 2,
        "description": "p",
    }
    assert props["many"] == {"type": "array", "items": {"type": "number"}, "description": "m"}
    assert props["scores"] == {
        "type": "object",
        "additionalProperties": {"type": "number"},
        "description": "s",
    }
    assert props["maybe"] == {"type": ["integer", "null"], "description": "m"}
    assert props["either"] == {"type": ["integer", "string"], "description": "e"}
    assert props["mode"] == {"type": "string", "enum": ["fast", "slow"], "description": "m"}
    assert props["unit"] == {
        "type": "string",
        "enum": ["celsius", "fahrenheit"],
        "description": "u",
        "default": "celsius",
    }
    # Annotated's description needs no docstring entry
    assert props["label"] == {"type": "string", "description": "A short label", "default": "x"}
    assert props["anything"] == {"description": "a", "default": None}
    assert props["unique"] == {
        "anyOf": [
            {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
            {"type": "null"},
        ],
        "description": "u",
        "default": None,
    }


@dataclass
class Point:
    """A point on a map.

    Attributes:
        lat: Latitude in degrees.
        lon: Longitude in degrees.
    """

    lat: float
    lon: float
    tags: list[str] = field(default_factory=list)


class Options(TypedDict):
    verbose: bool
    level: NotRequired[int]


class Address(pydantic.BaseModel):
    street: str = pydantic.Field(description="Street and number")
    zip_code: str | None = None


class Person(pydantic.BaseModel):
    name: str
    home: Address
    others: list[Address] = []


def test_structured_types_are_inlined_objects() -> None:
    def route(start: Point, options: Options, person: Person) -> None:
        """Route.

        Args:
            start: Where to start.
            options: Knobs.
            person: Who travels.
        """

    props = params(route)["properties"]
    assert props["start"] == {
        "type": "object",
        "description": "Where to start.",
        "properties": {
            "lat": {"type": "number", "description": "Latitude in degrees."},
            "lon": {"type": "number", "description": "Longitude in degrees."},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["lat", "lon"],
        "additionalProperties": False,
    }
    assert props["options"] == {
        "type": "object",
        "description": "Knobs.",
        "properties": {"verbose": {"type": "boolean"}, "level": {"type": "integer"}},
        "required": ["verbose"],
        "additionalProperties": False,
    }
    address = {
        "type": "object",
        "properties": {
            "street": {"type": "string", "description": "Street and number"},
            "zip_code": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["street"],
        "additionalProperties": False,
    }
    assert props["person"] == {
        "type": "object",
        "description": "Who travels.",
        "properties": {
            "name": {"type": "string"},
            "home": address,
            "others": {"type": "array", "items": address, "default": []},
        },
        "required": ["name", "home"],
        "additionalProperties": False,
    }
    assert "$defs" not in str(props)


@dataclass
class Node:
    value: int
    children: list[Node]


def test_recursive_types_are_rejected_by_name() -> None:
    def walk(tree: Node) -> None:
        """Walk.

        Args:
            tree: The tree.
        """

    with pytest.raises(SchemaError, match="recursive type Node"):
        tool_from_function(walk)


DOCSTRINGS = {
    "google": """Get the weather.

    Args:
        city: The city name.
        unit: The unit. One of: celsius, fahrenheit.
    """,
    "numpy": """Get the weather.

    Parameters
    ----------
    city : str
        The city name.
    unit : str
        The unit. One of: celsius, fahrenheit.
    """,
    "rest": """Get the weather.

    :param city: The city name.
    :param unit: The unit. One of: celsius, fahrenheit.
    """,
}


@pytest.mark.parametrize("style", sorted(DOCSTRINGS))
def test_docstring_styles_give_the_same_schema(style: str) -> None:
    def get_weather(city: str, unit: str = "celsius") -> str:
        return city

    get_weather.__doc__ = DOCSTRINGS[style]
    result = tool_from_function(get_weather)
    assert result.description == "Get the weather."
    assert result.parameters["properties"] == {
        "city": {"type": "string", "description": "The city name."},
        "unit": {
            "type": "string",
            "description": "The unit. One of: celsius, fahrenheit.",
            "enum": ["celsius", "fahrenheit"],
            "default": "celsius",
        },
    }


def test_json_choices_become_a_typed_enum_and_leave_the_description() -> None:
    def f(level: int) -> None:
        """F.

        Args:
            level: Verbosity (choices: [1, 2, 3])
        """

    assert params(f)["properties"]["level"] == {
        "type": "integer",
        "description": "Verbosity",
        "enum": [1, 2, 3],
    }


def test_prose_that_is_not_a_list_is_not_an_enum() -> None:
    def f(city: str) -> None:
        """F.

        Args:
            city: One of the largest cities of the whole world, spelled out.
        """

    assert "enum" not in params(f)["properties"]["city"]


def test_missing_hints_and_docs_raise_naming_function_and_parameters() -> None:
    def lookup(query, limit: int = 3) -> list[str]:  # type: ignore[no-untyped-def]
        """Search the index.

        Args:
            query: What to look for.
        """
        return []

    with pytest.raises(SchemaError) as info:
        tool_from_function(lookup)
    message = str(info.value)
    assert "lookup" in message
    assert "parameter 'query' has no type hint" in message
    assert "parameter 'limit' is not documented" in message


def test_warn_mode_warns_per_problem_and_silent_mode_builds_anyway() -> None:
    def bare(x: int, y):  # type: ignore[no-untyped-def]
        pass

    with pytest.warns(FncallWarning) as record:
        warned = tool_from_function(bare, strict_docs="warn")
    texts = [str(w.message) for w in record]
    assert any("has no description" in t for t in texts)
    assert any("parameter 'y' has no type hint" in t for t in texts)
    assert any("parameter 'x' is not documented" in t for t in texts)
    silent = tool_from_function(bare, strict_docs=False)
    assert silent.parameters == warned.parameters
    assert silent.parameters["properties"] == {"x": {"type": "integer"}, "y": {}}


def test_unsupported_and_uncallable_shapes_always_raise() -> None:
    def star(*values: int) -> None:
        """S."""

    with pytest.raises(SchemaError, match=r"\*values cannot be passed by name"):
        tool_from_function(star, strict_docs=False)

    def bad_type(when: complex) -> None:
        """B.

        Args:
            when: w
        """

    with pytest.raises(SchemaError, match="unsupported type <class 'complex'>; supported: str"):
        tool_from_function(bad_type)
    with pytest.raises(SchemaError, match="dict keys must be str"):

        @tool
        def int_keys(m: dict[int, str]) -> None:
            """I.

            Args:
                m: m
            """


def test_tool_decorator_bare_and_with_options_and_async() -> None:
    @tool
    async def fetch(url: str) -> str:
        """Fetch a page.

        Args:
            url: The address.
        """
        return url

    assert isinstance(fetch, Tool)
    assert fetch.name == "fetch"
    assert fetch.function is not None and fetch.function.__name__ == "fetch"

    @tool(name="lookup_user", description="Find a user.", strict_docs=False)
    def find(user_id):  # type: ignore[no-untyped-def]
        return user_id

    assert find.name == "lookup_user"
    assert find.description == "Find a user."
    assert find.function is not None and find.function(7) == 7
    assert find.to_openai()["function"]["parameters"]["required"] == ["user_id"]
    assert tool_from_function(find.function, strict_docs=False).name == "find"


def test_kwargs_open_the_object_and_non_json_defaults_are_omitted() -> None:
    sentinel = object()

    def f(a: int = 1, b: object = sentinel, **extra: str) -> None:
        """F.

        Args:
            a: a
            b: b
            extra: more
        """

    schema = params(f)
    assert schema["additionalProperties"] == {"type": "string"}
    assert schema["properties"]["b"] == {"description": "b"}
    assert schema["required"] == []


def test_python_arguments_builds_the_declared_types() -> None:
    @tool
    def plan(start: Point, unit: Unit, pair: tuple[int, int], name: str, person: Person) -> None:
        """Plan.

        Args:
            start: s
            unit: u
            pair: p
            name: n
            person: p
        """

    arguments = validate_arguments(
        plan,
        {
            "start": {"lat": 1, "lon": 2.5},
            "unit": "fahrenheit",
            "pair": [1, 2],
            "name": "x",
            "person": {"name": "Ada", "home": {"street": "Main 1"}},
        },
    )
    converted = python_arguments(plan, arguments)
    assert converted["start"] == Point(lat=1.0, lon=2.5)
    assert converted["unit"] is Unit.FAHRENHEIT
    assert converted["pair"] == (1, 2)
    assert converted["name"] == "x"
    assert converted["person"] == Person(name="Ada", home=Address(street="Main 1"))
    assert arguments["unit"] == "fahrenheit"  # the validated dict is not modified
    with pytest.raises(ArgumentError, match="unit: cannot convert 'kelvin' to Unit"):
        python_arguments(plan, {**arguments, "unit": "kelvin"})


def test_choices_that_do_not_fit_the_type_are_ignored() -> None:
    def f(level: int, flag: bool, ratio: float) -> None:
        """F.

        Args:
            level: One of: low, high.
            flag: One of: yes, no.
            ratio: One of 0.5, 1.5.
        """

    props = params(f)["properties"]
    assert "enum" not in props["level"] and "enum" not in props["flag"]
    assert props["ratio"]["enum"] == [0.5, 1.5]
