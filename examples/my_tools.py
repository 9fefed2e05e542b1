"""A small function library for trying fncall: `fncall call "..." --tools examples/my_tools.py`.

The data is made up and deterministic, so the examples run offline.
"""

from __future__ import annotations

from typing import Literal

from fncall import tool

_TEMPERATURES_C = {"paris": 18.0, "london": 14.0, "tokyo": 22.0, "new york": 16.0, "berlin": 12.0}
_RATES_TO_USD = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0067}


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Current weather for a city.

    Args:
        city: City name, e.g. "Paris".
        unit: Temperature unit.
    """
    celsius = _TEMPERATURES_C.get(city.strip().lower(), 20.0)
    value = celsius if unit == "celsius" else celsius * 9 / 5 + 32
    return {"city": city, "temperature": round(value, 1), "unit": unit, "sky": "partly cloudy"}


@tool
def convert_currency(amount: float, from_currency: str, to_currency: str) -> dict:
    """Convert an amount of money between currencies.

    Args:
        amount: The amount to convert.
        from_currency: ISO code of the source currency, e.g. "EUR".
        to_currency: ISO code of the target currency, e.g. "USD".
    """
    codes = {from_currency.upper(), to_currency.upper()} - set(_RATES_TO_USD)
    if codes:
        raise ValueError(f"unknown currency {sorted(codes)}; known: {sorted(_RATES_TO_USD)}")
    usd = amount * _RATES_TO_USD[from_currency.upper()]
    return {"amount": round(usd / _RATES_TO_USD[to_currency.upper()], 2), "currency": to_currency}


@tool
def add(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b
