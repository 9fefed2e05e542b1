"""The AST checker's rules, one case each (the cross-check test compares with BFCL's own)."""

from __future__ import annotations

from typing import Any

import pytest

from fncall.evaluate.checker import ERROR_TYPES, check_calls, check_case, normalise_string
from fncall.evaluate.data import make_case
from fncall.types import ToolCall

FUNCTION = {
    "name": "book.hotel",
    "parameters": {
        "type": "dict",
        "required": ["city", "nights"],
        "properties": {
            "city": {"type": "string"},
            "nights": {"type": "integer"},
            "budget": {"type": "float"},
            "breakfast": {"type": "boolean"},
            "guests": {"type": "array", "items": {"type": "string"}},
            "room": {"type": "dict", "properties": {"kind": {"type": "string"}}},
        },
    },
}
OTHER = {"name": "cancel", "parameters": {"type": "dict", "required": [], "properties": {}}}
TRUTH = {
    "book.hotel": {
        "city": ["New York", "NYC"],
        "nights": [3],
        "budget": [200.0, ""],
        "breakfast": [True],
        "guests": [["Ann", "Bob"], ""],
        "room": [{"kind": ["double"]}, ""],
    }
}
GOOD: dict[str, Any] = {"city": "New York", "nights": 3, "breakfast": True}


def judge(arguments: dict[str, Any], name: str = "book.hotel", category: str = "simple_python"):
    return check_calls(category, [FUNCTION], [TRUTH], [ToolCall(name=name, arguments=arguments)])


@pytest.mark.parametrize(
    "arguments",
    [
        GOOD,
        {**GOOD, "city": "new-york"},  # normalised: case, spaces and ,./-_*^ are ignored
        {**GOOD, "city": "NYC"},  # any acceptable value
        {**GOOD, "budget": 200},  # an int is accepted for a float
        {**GOOD, "budget": 200.0, "guests": ["ann", "BOB"]},
        {**GOOD, "room": {"kind": "Double"}},
    ],
)
def test_acceptable_answers_pass(arguments: dict[str, Any]) -> None:
    verdict = judge(arguments)
    assert verdict.valid, verdict
    assert verdict.error_type is None


@pytest.mark.parametrize(
    "arguments,name,error_type,detail",
    [
        (GOOD, "book_hotel", "wrong_function", "simple_function_checker:wrong_func_name"),
        (
            {"city": "NYC", "breakfast": True},
            "book.hotel",
            "missing_parameter",
            "simple_function_checker:missing_required",
        ),
        (
            {"city": "NYC", "nights": 3},
            "book.hotel",
            "missing_parameter",
            "simple_function_checker:missing_optional",
        ),  # breakfast may not be left out
        (
            {**GOOD, "pets": 1},
            "book.hotel",
            "extra_parameter",
            "simple_function_checker:unexpected_param",
        ),
        ({**GOOD, "nights": "3"}, "book.hotel", "wrong_type", "type_error:simple"),
        ({**GOOD, "nights": 3.0}, "book.hotel", "wrong_type", "type_error:simple"),
        ({**GOOD, "breakfast": 1}, "book.hotel", "wrong_type", "type_error:simple"),
        ({**GOOD, "city": "Boston"}, "book.hotel", "wrong_value", "value_error:string"),
        ({**GOOD, "nights": 4}, "book.hotel", "wrong_value", "value_error:others"),
        ({**GOOD, "guests": ["Bob", "Ann"]}, "book.hotel", "wrong_value", "value_error:list/tuple"),
        (
            {**GOOD, "room": {"kind": "single"}},
            "book.hotel",
            "wrong_value",
            "value_error:dict_value",
        ),
        ({**GOOD, "room": {"view": "sea"}}, "book.hotel", "wrong_value", "value_error:dict_key"),
    ],
)
def test_each_rule_rejects(arguments, name, error_type, detail) -> None:
    verdict = judge(arguments, name=name)
    assert not verdict.valid
    assert (verdict.error_type, verdict.detail) == (error_type, detail)
    assert verdict.error_type in ERROR_TYPES and verdict.message


def test_counts_and_unparseable_output() -> None:
    call = ToolCall(name="book.hotel", arguments=GOOD)
    none = check_calls("simple_python", [FUNCTION], [TRUTH], [])
    assert (none.valid, none.error_type) == (False, "no_call")
    two = check_calls("live_simple", [FUNCTION], [TRUTH], [call, call])
    assert (two.valid, two.error_type) == (False, "wrong_count")
    bad = check_calls("multiple", [OTHER, FUNCTION], [TRUTH], None)
    assert (bad.valid, bad.error_type) == (False, "unparseable")
    assert check_calls("multiple", [OTHER, FUNCTION], [TRUTH], [call]).valid
    wrong = check_calls("multiple", [OTHER, FUNCTION], [TRUTH], [ToolCall(name="cancel")])
    assert wrong.error_type == "wrong_function"


def test_parallel_matches_in_any_order_with_the_same_count() -> None:
    truth = [{"cancel": {}}, TRUTH]
    calls = [ToolCall(name="book.hotel", arguments=GOOD), ToolCall(name="cancel")]
    assert check_calls("parallel_multiple", [FUNCTION, OTHER], truth, calls).valid
    assert check_calls("parallel", [FUNCTION, OTHER], truth, calls[::-1]).valid
    fewer = check_calls("parallel", [FUNCTION, OTHER], truth, calls[:1])
    assert fewer.error_type == "wrong_count"
    off = [ToolCall(name="book.hotel", arguments={**GOOD, "nights": 9}), ToolCall(name="cancel")]
    verdict = check_calls("parallel", [FUNCTION, OTHER], truth, off)
    # BFCL reports "cannot find a match"; the taxonomy says why the right function's call failed.
    assert verdict.detail.endswith("cannot_find_match") and verdict.error_type == "wrong_value"


def test_irrelevance_passes_only_without_a_call() -> None:
    assert check_calls("irrelevance", [FUNCTION], [], []).valid
    assert check_calls("live_irrelevance", [FUNCTION], [], None).valid  # nothing decoded
    called = check_calls("irrelevance", [FUNCTION], [], [ToolCall(name="book.hotel")])
    assert (called.valid, called.error_type) == (False, "called_when_should_not")


def test_check_case_maps_model_names_back() -> None:
    entry = {"id": "c", "question": [[{"role": "user", "content": "q"}]], "function": [FUNCTION]}
    case = make_case(entry, "simple_python", [TRUTH])
    assert case.tools[0].name == "book_hotel"
    assert check_case(case, [ToolCall(name="book_hotel", arguments=GOOD)]).valid
    assert not check_case(case, [ToolCall(name="cancel", arguments=GOOD)]).valid


def test_string_normalisation() -> None:
    assert normalise_string("April 1, 2024") == normalise_string("april 1 2024")
    assert normalise_string("New_York-City.") == "newyorkcity"
    assert normalise_string("it's") == 'it"s'
