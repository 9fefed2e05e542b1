"""Values a request names, and whether a call list has used them (``fncall.values``)."""

from __future__ import annotations

import pytest

from fncall.formats import get_format
from fncall.train.generate import generate_examples
from fncall.values import request_values, unused_values


@pytest.mark.parametrize(
    ("request_text", "values"),
    [
        (
            "What is the weather in Paris, London and New York City?",
            ("paris", "london", "new york city"),
        ),
        ("Find the weather in Boston and the area of a circle of radius 3.", ("boston", "3")),
        ('Play "Bohemian Rhapsody" by Queen', ("bohemian rhapsody", "queen")),
        ("Book a room on 2024-12-24 at 10:30 for -5 degrees", ("2024-12-24", "10:30", "-5")),
        (
            "Mail bob@x.org the file photos/cat.png from https://x.io/a",
            ("bob@x.org", "photos/cat.png", "https://x.io/a"),
        ),
        ("I want what you have. Please, Also, Thanks.", ()),
        ("", ()),
    ],
)
def test_request_values_are_numbers_quotes_and_capitalised_names(
    request_text: str, values: tuple[str, ...]
) -> None:
    assert request_values(request_text) == values


def test_names_the_tools_use_are_not_values() -> None:
    request = "Calculate the BMI for 70 kg and 1.75 m in Oslo."
    assert request_values(request) == ("bmi", "oslo", "70", "1.75")
    assert request_values(request, known="calculate_bmi Body mass index") == ("oslo", "70", "1.75")
    # An acronym of a function's name is the function too; an equation's exponents and its
    # "= 0" are not values.
    gcd = "What is the GCD of 3197 and 2641? Solve 3x^2 + -15x + 2 = 0."
    assert request_values(gcd, known="greatest_common_divisor") == ("3197", "2641", "2")


def test_a_value_is_used_in_any_spelling_the_judge_accepts() -> None:
    values = request_values("Convert 100 USD to EUR, a 5% tip, in New York, and Paris.")
    calls = '[convert(amount=100.0, from="USD", to="EUR"), tip(rate=0.05), w(city="New York, NY")'
    assert unused_values(values, calls) == ["paris"]
    assert unused_values(values, calls + ', w(tz="Europe/Paris")') == []
    assert unused_values(("1",), "[f(x=150)]") == ["1"]  # a digit inside a number is not it


def test_a_long_document_is_not_a_request_to_cover() -> None:
    text = " ".join(f"Item {n} costs {n * 3} dollars." for n in range(200))
    assert len(request_values(text)) == 64


@pytest.mark.parametrize("format_name", ["pythonic", "json"])
def test_right_answers_to_generated_requests_leave_no_value_unused(format_name: str) -> None:
    """The rule's premise, on requests generated from the built-in library (several calls
    included): written out in either format, the right calls use every value the request names,
    so coverage never pushes a right list to go on."""
    fmt = get_format(format_name)
    mix = {"simple": 0.25, "multiple": 0.25, "parallel": 0.25, "parallel_multiple": 0.25}
    examples = generate_examples(1000, seed=11, mix=mix, masking_probability=0.0)
    named = 0
    for example in examples:
        request = example.messages[-2].content
        assert isinstance(request, str)
        known = "\n".join(f"{t.name} {t.description}" for t in example.tools)
        values = request_values(request, known)
        named += bool(values)
        answer = fmt.render_calls(example.messages[-1].tool_calls)
        assert unused_values(values, answer) == [], (request, answer)
    assert named > 700  # most generated requests name values


def test_a_unit_with_a_slash_is_not_a_path() -> None:
    """Found on the development suite: "18 m/s" read "m/s" as a file path, a value no call
    would ever use, so the coverage kept asking for calls."""
    request = "A ball is kicked at 18 m/s at a 35 degree angle, see photos/cat.png."
    assert request_values(request) == ("photos/cat.png", "18", "35")
