"""The demo's five questions on the real default model: the right call, then an answer from it.

This is what ``make demo`` shows a new user, so it is what the default model must get right:
each question calls the function that fits with the values the question gave (the marathon in
``convert_units``, where the 0.5B reached for ``convert_currency``), two cities are two calls,
the haiku is no call at all, and every answer carries the number the function returned.
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("llama_cpp")

from examples.demo import QUESTIONS, TOOLS

from fncall.engine import load_engine
from fncall.execute import chat
from fncall.models import DEFAULT_MODEL
from fncall.pipeline import LocalChat

pytestmark = [pytest.mark.model, pytest.mark.slow]


def numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?", text)]


def test_the_default_model_answers_the_demo_questions() -> None:
    engine = load_engine(DEFAULT_MODEL)
    try:
        model = LocalChat(engine)
        results = {question: chat(question, TOOLS, model=model) for question in QUESTIONS}
    finally:
        engine.close()  # now, not at interpreter exit
    weather, money, marathon, two_cities, haiku = (results[q] for q in QUESTIONS)

    assert [(c.name, c.arguments["city"].lower()) for c in weather.calls] == [
        ("get_weather", "paris")
    ]
    assert "18" in (weather.text or "")

    [call] = money.calls
    assert call.name == "convert_currency"
    assert (float(call.arguments["amount"]), call.arguments["from_currency"].upper()) == (
        250.0,
        "USD",
    )
    assert call.arguments["to_currency"].upper() == "EUR"
    assert 231.48 in numbers(money.text or "")

    [call] = marathon.calls
    assert call.name == "convert_units", call
    assert float(call.arguments["value"]) == 42.0
    assert (call.arguments["from_unit"].lower(), call.arguments["to_unit"].lower()) == ("km", "mi")
    assert any(round(n, 1) == 26.1 for n in numbers(marathon.text or "")), marathon.text

    assert sorted(c.arguments["city"].lower() for c in two_cities.calls) == ["oslo", "tokyo"]
    assert {c.name for c in two_cities.calls} == {"get_weather"}
    assert {24.0, 7.0} <= set(numbers(two_cities.text or ""))

    assert haiku.calls == ()
    assert haiku.text and haiku.stop_reason == "final_answer"
