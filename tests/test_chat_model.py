"""The real default model through LocalChat, constrained: it calls when a tool fits, and answers
in text when none does. Short generations only: this runs in ``make test``."""

from __future__ import annotations

import pytest

from fncall.engine import load_engine
from fncall.execute import chat
from fncall.pipeline import LocalChat

pytest.importorskip("llama_cpp")

pytestmark = pytest.mark.model


def get_weather(city: str, unit: str = "celsius") -> dict:
    """Get the current weather in a city.

    Args:
        city: City name, e.g. "Paris".
        unit: Temperature unit, "celsius" or "fahrenheit".
    """
    return {"city": city, "temperature": 18 if unit == "celsius" else 64, "unit": unit}


def convert_currency(amount: float, from_currency: str, to_currency: str) -> dict:
    """Convert money between currencies.

    Args:
        amount: Amount of money.
        from_currency: ISO code to convert from, e.g. "USD".
        to_currency: ISO code to convert to, e.g. "EUR".
    """
    return {"amount": round(amount * 0.92, 2), "currency": to_currency}


@pytest.fixture(scope="module")
def model() -> LocalChat:
    return LocalChat(load_engine("qwen2.5-coder-0.5b"), max_tokens=96)


def test_a_fitting_question_gets_a_valid_executed_call(model):
    result = chat(
        "What's the weather in Paris right now?",
        [get_weather, convert_currency],
        model=model,
        max_steps=2,
    )
    assert [c.name for c in result.calls][:1] == ["get_weather"]
    assert "paris" in str(result.calls[0].arguments["city"]).lower()
    assert result.results and result.results[0].ok, result.results
    assert result.text  # it answered from the result


def test_an_irrelevant_question_gets_text_in_auto_mode(model):
    turn = model.complete(
        "Write one sentence about the history of the violin.", [get_weather, convert_currency]
    )
    assert turn.tool_calls == (), turn.raw
    assert turn.content
