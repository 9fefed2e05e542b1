"""A small function library for tests: weather and math, the way a user would write one."""

from __future__ import annotations

from typing import Literal

from fncall.tools import tool

# Seeded, fixed data so results are predictable.
_TEMPERATURES_C = {"paris": 18.0, "london": 14.5, "tokyo": 22.0}


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, object]:
    """Get the current temperature in a city.

    Args:
        city: The city name, e.g. "Paris".
        unit: The temperature unit.
    """
    celsius = _TEMPERATURES_C.get(city.lower())
    if celsius is None:
        raise ValueError(f"no weather data for {city!r}; known: {sorted(_TEMPERATURES_C)}")
    value = celsius if unit == "celsius" else celsius * 9 / 5 + 32
    return {"city": city, "temperature": value, "unit": unit}


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@tool
async def mean(values: list[float]) -> float:
    """The arithmetic mean of a list of numbers.

    Args:
        values: The numbers (at least one).
    """
    if not values:
        raise ValueError("mean of an empty list")
    return sum(values) / len(values)


def _helper() -> None:
    """Private: never exposed."""
