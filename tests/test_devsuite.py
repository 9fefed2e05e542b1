"""The hand-written development suites (``benchmarks/devsuite``, ``benchmarks/devsuite-optional``)
are well formed and self-consistent.

Every case loads through the project's loader; every ground-truth call names an offered function,
lists every parameter (optional ones with ``""``, "may be left out"), names only parameters the
function has, and gives acceptable values of the declared types; and a call built from the first
acceptable value of each parameter passes the project's checker. In ``devsuite-optional`` most
requests give values for optional parameters, so leaving those out must fail.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fncall.evaluate.checker import check_case
from fncall.evaluate.data import Case, load_category
from fncall.types import ToolCall

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
# suite folder -> cases per category
SUITES: dict[str, dict[str, int]] = {
    "devsuite": {
        "simple_python": 50,
        "multiple": 40,
        "parallel": 40,
        "parallel_multiple": 40,
        "irrelevance": 70,
    },
    "devsuite-optional": {"simple_python": 40, "parallel": 20, "parallel_multiple": 20},
}
CALL_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")
SUITE_CALL_CATEGORIES = [
    (suite, category)
    for suite, counts in SUITES.items()
    for category in counts
    if category in CALL_CATEGORIES
]
BFCL_TYPES = {"string", "integer", "float", "boolean", "array", "dict", "tuple", "any"}


@cache
def cases(suite: str, category: str) -> list[Case]:
    return load_category(category, data_dir=BENCHMARKS / suite)


def all_cases(suite: str) -> list[Case]:
    return [case for category in SUITES[suite] for case in cases(suite, category)]


def _given_optionals(case: Case, answer: Mapping[str, Any]) -> list[str]:
    """Optional parameters of an expected call that may not be left out: the request gives them."""
    (name, arguments), *_ = answer.items()
    function = next(f for f in case.functions if f["name"] == name)
    required = set(function["parameters"]["required"])
    return [p for p, acceptable in arguments.items() if p not in required and "" not in acceptable]


def _type_ok(value: Any, bfcl_type: str) -> bool:
    if bfcl_type == "integer":
        return type(value) is int
    if bfcl_type == "float":
        return type(value) in (int, float)
    if bfcl_type == "string":
        return type(value) is str
    if bfcl_type == "boolean":
        return type(value) is bool
    if bfcl_type in ("array", "tuple"):
        return type(value) is list
    if bfcl_type == "dict":
        return type(value) is dict
    return bfcl_type == "any"


def _value_problems(param: str, value: Any, schema: Mapping[str, Any]) -> list[str]:
    """Why an acceptable ``value`` does not fit the parameter's ``schema`` (empty if it does)."""
    bfcl_type = schema.get("type", "any")
    if not _type_ok(value, bfcl_type):
        return [f"{param}: {value!r} is not of type {bfcl_type}"]
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{param}: {value!r} is not in the enum {schema['enum']}")
    if bfcl_type in ("array", "tuple") and "items" in schema:
        for item in value:
            problems += _value_problems(f"{param}[]", item, schema["items"])
    if bfcl_type == "dict":
        # an acceptable dict maps each key to a list of acceptable values
        properties = schema.get("properties", {})
        for key, options in value.items():
            if key not in properties:
                problems.append(f"{param}: unknown key {key!r}")
            elif not isinstance(options, list) or not options:
                problems.append(f"{param}.{key}: acceptable values must be a non-empty list")
            else:
                for option in options:
                    if option != "":
                        problems += _value_problems(f"{param}.{key}", option, properties[key])
    return problems


def _first_value(value: Any) -> Any:
    """The first acceptable value as a model would send it (dicts hold lists of options)."""
    if isinstance(value, dict):
        return {k: v[0] for k, v in value.items() if v and v[0] != ""}
    return value


@pytest.mark.parametrize("suite", SUITES)
def test_counts_and_files(suite: str) -> None:
    for category, count in SUITES[suite].items():
        assert len(cases(suite, category)) == count, category
    assert not (BENCHMARKS / suite / "possible_answer" / "BFCL_v4_irrelevance.json").exists()


@pytest.mark.parametrize("suite", SUITES)
def test_ids_are_unique_sequential_and_answers_line_up(suite: str) -> None:
    seen: set[str] = set()
    for category in SUITES[suite]:
        ids = [case.id for case in cases(suite, category)]
        assert ids == [f"{category}_{n}" for n in range(len(ids))]
        assert not seen & set(ids)
        seen |= set(ids)
        if category in CALL_CATEGORIES:
            answer_file = BENCHMARKS / suite / "possible_answer" / f"BFCL_v4_{category}.json"
            lines = answer_file.read_text(encoding="utf-8").splitlines()
            answer_ids = [json.loads(line)["id"] for line in lines if line.strip()]
            assert answer_ids == ids, category


@pytest.mark.parametrize("suite", SUITES)
def test_case_shapes(suite: str) -> None:
    for case in all_cases(suite):
        n_functions, calls = len(case.functions), case.expected_functions
        assert len(case.messages) == 1 and case.messages[0].role == "user", case.id
        assert (case.messages[0].content or "").strip(), case.id
        names = [f["name"] for f in case.functions]
        assert len(set(names)) == len(names), case.id
        if case.category == "simple_python":
            assert n_functions == 1 and len(calls) == 1, case.id
        elif case.category == "multiple":
            assert 2 <= n_functions <= 4 and len(calls) == 1, case.id
        elif case.category == "parallel":
            assert n_functions == 1 and 2 <= len(calls) <= 4, case.id
        elif case.category == "parallel_multiple":
            assert 2 <= n_functions <= 4 and len(calls) >= 2, case.id
            assert len(set(calls)) >= 2, case.id
        else:
            assert 1 <= n_functions <= 3 and not case.ground_truth, case.id


@pytest.mark.parametrize("suite", SUITES)
def test_function_docs_are_bfcl_shaped(suite: str) -> None:
    for case in all_cases(suite):
        for function in case.functions:
            assert function.get("description"), (case.id, function["name"])
            parameters = function["parameters"]
            assert parameters["type"] == "dict"
            properties = parameters["properties"]
            assert 1 <= len(properties) <= 6, (case.id, function["name"])
            assert set(parameters["required"]) <= set(properties), (case.id, function["name"])
            for name, schema in properties.items():
                assert schema["type"] in BFCL_TYPES, (case.id, function["name"], name)
                assert schema.get("description"), (case.id, function["name"], name)
                if schema["type"] == "array":
                    assert "items" in schema, (case.id, function["name"], name)
                if "default" in schema:
                    assert name not in parameters["required"], (case.id, name)


@pytest.mark.parametrize(("suite", "category"), SUITE_CALL_CATEGORIES)
def test_ground_truth_matches_function_docs(suite: str, category: str) -> None:
    problems = []
    for case in cases(suite, category):
        functions = {f["name"]: f for f in case.functions}
        for answer in case.ground_truth:
            (name, arguments), *_ = answer.items()
            if name not in functions:
                problems.append(f"{case.id}: {name} is not offered")
                continue
            parameters = functions[name]["parameters"]
            properties, required = parameters["properties"], set(parameters["required"])
            problems += [f"{case.id}: {name} lacks {p}" for p in required - set(arguments)]
            # optional parameters are listed too (with "" for "may be left out"), so that a
            # model passing a default the question did not mention is not marked wrong
            problems += [f"{case.id}: {name} omits {p}" for p in set(properties) - set(arguments)]
            for param, acceptable in arguments.items():
                where = f"{case.id}: {name}.{param}"
                if param not in properties:
                    problems.append(f"{where} is not a parameter")
                    continue
                if not isinstance(acceptable, list) or not acceptable:
                    problems.append(f"{where}: acceptable values must be a non-empty list")
                    continue
                for value in acceptable:
                    if value == "":  # "may be omitted": only for optional parameters
                        if param in required:
                            problems.append(f"{where}: '' for a required parameter")
                        continue
                    found = _value_problems(param, value, properties[param])
                    problems += [f"{where}: {p}" for p in found]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("suite", "category"), SUITE_CALL_CATEGORIES)
def test_checker_accepts_first_acceptable_values(suite: str, category: str) -> None:
    for case in cases(suite, category):
        safe = {original: model_name for model_name, original in case.name_map.items()}
        calls = [
            ToolCall(
                name=safe.get(name, name),
                arguments={p: _first_value(v[0]) for p, v in arguments.items() if v[0] != ""},
            )
            for answer in case.ground_truth
            for name, arguments in answer.items()
        ]
        verdict = check_case(case, calls)
        assert verdict.valid, (case.id, verdict.message)
        if "parallel" in category:  # order is free: the reversed calls pass too
            assert check_case(case, calls[::-1]).valid, case.id


def test_irrelevance_passes_only_without_calls() -> None:
    for case in cases("devsuite", "irrelevance"):
        assert check_case(case, []).valid, case.id
        first = case.tools[0]
        assert not check_case(case, [ToolCall(name=first.name, arguments={})]).valid, case.id


def test_optional_suite_requests_give_optional_values() -> None:
    simple = cases("devsuite-optional", "simple_python")
    giving = [case for case in simple if _given_optionals(case, case.ground_truth[0])]
    assert len(giving) >= 0.7 * len(simple), f"{len(giving)} of {len(simple)}"
    for case in cases("devsuite-optional", "parallel"):  # every call's part of the request
        assert all(_given_optionals(case, answer) for answer in case.ground_truth), case.id


@pytest.mark.parametrize("category", SUITES["devsuite-optional"])
def test_optional_suite_fails_without_the_given_optional_values(category: str) -> None:
    """The expected calls minus the optional values the request gives are judged wrong."""
    for case in cases("devsuite-optional", category):
        safe = {original: model_name for model_name, original in case.name_map.items()}
        calls, dropped = [], []
        for answer in case.ground_truth:
            (name, arguments), *_ = answer.items()
            given = _given_optionals(case, answer)
            dropped += given
            first = {p: _first_value(v[0]) for p, v in arguments.items() if v[0] != ""}
            kept = {p: v for p, v in first.items() if p not in given}
            calls.append(ToolCall(name=safe.get(name, name), arguments=kept))
        assert check_case(case, calls).valid is not bool(dropped), case.id
