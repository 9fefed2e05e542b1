"""fncall demo: a small function library, a few questions, the real default model on the CPU.

Run with ``make demo`` (it installs everything and assembles the model first), or directly:
``python examples/demo.py [--model NAME|PATH] [--no-constrained]``.

Each question goes through LocalChat (the model's chat template, a grammar built from the
tools, constrained decoding, parsing) and the executor; the model then answers from the
results. The functions return deterministic fake data, so the demo needs no network.
"""

from __future__ import annotations

import argparse
import sys
import time

from fncall.engine import load_engine
from fncall.execute import chat
from fncall.models import DEFAULT_MODEL
from fncall.pipeline import LocalChat
from fncall.tools import ToolSet

# -- the function library -------------------------------------------------------------------------

_WEATHER = {
    "paris": (18, "partly cloudy"),
    "tokyo": (24, "sunny"),
    "oslo": (7, "light rain"),
    "new york": (21, "clear"),
}
_PER_EUR = {"EUR": 1.0, "USD": 1.08, "GBP": 0.85, "JPY": 162.0, "CHF": 0.95}
_UNITS = {
    ("km", "mi"): lambda v: v * 0.621371,
    ("mi", "km"): lambda v: v / 0.621371,
    ("kg", "lb"): lambda v: v * 2.204623,
    ("lb", "kg"): lambda v: v / 2.204623,
    ("c", "f"): lambda v: v * 9 / 5 + 32,
    ("f", "c"): lambda v: (v - 32) * 5 / 9,
}


def get_weather(city: str) -> dict:
    """Get the current weather in a city.

    Args:
        city: City name, e.g. "Paris".
    """
    temp_c, sky = _WEATHER.get(city.strip().lower(), (15, "overcast"))
    return {"city": city, "temperature_c": temp_c, "sky": sky}


def convert_currency(amount: float, from_currency: str, to_currency: str) -> dict:
    """Convert an amount of money between currencies at today's rate.

    Args:
        amount: The amount to convert.
        from_currency: ISO code of the source currency, e.g. "USD".
        to_currency: ISO code of the target currency, e.g. "EUR".
    """
    source, target = from_currency.upper(), to_currency.upper()
    for code in (source, target):
        if code not in _PER_EUR:
            raise ValueError(f"unknown currency {code!r}; known: {', '.join(_PER_EUR)}")
    converted = amount / _PER_EUR[source] * _PER_EUR[target]
    return {"amount": round(converted, 2), "currency": target}


def convert_units(value: float, from_unit: str, to_unit: str) -> dict:
    """Convert a quantity between units of distance, weight or temperature.

    Args:
        value: The quantity to convert.
        from_unit: One of km, mi, kg, lb, c, f.
        to_unit: One of km, mi, kg, lb, c, f.
    """
    convert = _UNITS.get((from_unit.lower(), to_unit.lower()))
    if convert is None:
        raise ValueError(f"cannot convert {from_unit!r} to {to_unit!r}")
    return {"value": round(convert(value), 3), "unit": to_unit}


TOOLS = ToolSet([get_weather, convert_currency, convert_units])

QUESTIONS = [
    "What's the weather like in Paris right now?",
    "How much is 250 US dollars in euros?",
    "How many miles is a 42 km marathon?",
    "What is the weather in Tokyo and in Oslo?",
    "Write a haiku about autumn leaves.",  # no function fits: the model should just answer
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="catalogue name or path")
    parser.add_argument("--no-constrained", dest="constrained", action="store_false")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    engine = load_engine(args.model)
    model = LocalChat(engine, constrained=args.constrained)
    print(
        f"model {engine.name}, format {model.format.name}, constrained {model.constrained}; "
        f"loaded in {time.perf_counter() - started:.1f} s"
    )
    print(f"tools: {', '.join(TOOLS.names)}\n")

    total = time.perf_counter()
    for question in QUESTIONS:
        began = time.perf_counter()
        result = chat(question, TOOLS, model=model)
        print(f"Q: {question}")
        by_id = {r.call_id: r for r in result.results}
        for call in result.calls:
            arguments = ", ".join(f"{k}={v!r}" for k, v in call.arguments.items())
            print(f"   call   {call.name}({arguments})")
            if call.id in by_id:
                outcome = by_id[call.id]
                print(f"   {'result' if outcome.ok else 'error ':<6} {outcome.render()}")
        if not result.calls:
            print("   (no function called)")
        print(f"A: {result.text}")
        print(f"   [{time.perf_counter() - began:.1f} s]\n")
    print(f"{len(QUESTIONS)} questions in {time.perf_counter() - total:.1f} s")
    store = getattr(getattr(engine, "prefix_cache", None), "store", None)
    if store is not None and store.hits:
        print(
            f"({store.hits} saved prefix states of an earlier run read from {store.root}; "
            "FNCALL_PREFIX_STORE_MB=0 starts cold)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
