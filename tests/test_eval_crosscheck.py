"""Our AST checker against BFCL's official one: identical verdicts on the same model outputs.

The official checker is imported from the installed ``bfcl-eval`` package. Its module imports
``bfcl_eval.constants.model_config``, which pulls in every model handler (and their heavy
dependencies) only to ask whether a model's function names use ``_`` for ``.``; a stub module
answers "no" (we map names back ourselves), and nothing else is replaced.

Outputs come from two sources: hand-made edge cases, and a deterministic set of mutations of the
ground truths of real BFCL cases (correct answers, alternative answers, and each kind of error).
"""

from __future__ import annotations

import copy
import importlib
import os
import random
import sys
import types
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fncall.evaluate.checker import check_calls
from fncall.evaluate.data import AST_CATEGORIES, CATEGORIES, Case, load_category, sample_cases
from fncall.types import ToolCall

pytest.importorskip("bfcl_eval", reason="the cross-check needs bfcl-eval (installed --no-deps)")


@pytest.fixture(scope="module")
def official() -> Iterator[Callable[[str, Any, Any, list[ToolCall] | None], tuple[bool, str]]]:
    stub = types.ModuleType("bfcl_eval.constants.model_config")

    class _Config:
        underscore_to_dot = False

    class _Mapping(dict):  # type: ignore[type-arg]
        def __missing__(self, key: str) -> _Config:
            return _Config()

    stub.MODEL_CONFIG_MAPPING = _Mapping()  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in ("bfcl_eval.constants.model_config",)}
    sys.modules["bfcl_eval.constants.model_config"] = stub
    try:
        ast_checker = importlib.import_module("bfcl_eval.eval_checker.ast_eval.ast_checker")
        from bfcl_eval.constants.enums import Language
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module

    def judge(category: str, functions: Any, truth: Any, calls: list[ToolCall] | None):
        decoded = None if calls is None else [{c.name: dict(c.arguments)} for c in calls]
        if "irrelevance" in category:  # eval_runner's relevance rule: pass when nothing decodes
            return (not decoded, "" if not decoded else "irrelevance_error:decoder_success")
        if decoded is None:
            return (False, "ast_decoder:decoder_failed")
        result = ast_checker.ast_checker(
            copy.deepcopy(list(functions)),
            decoded,
            copy.deepcopy(list(truth)),
            Language.PYTHON,
            category,
            "fncall",
        )
        return (result["valid"], "" if result["valid"] else result["error_type"])

    yield judge


def _agree(official, category, functions, truth, calls) -> tuple[bool, str]:
    ours = check_calls(category, functions, truth, calls)
    try:
        theirs = official(category, functions, truth, calls)
    except (AttributeError, KeyError, TypeError):
        # The official checker crashes on a few malformed outputs; we must reject those.
        assert not ours.valid, (category, calls)
        return (False, "official-crash")
    assert (ours.valid, ours.detail if not ours.valid else "") == theirs, (
        f"{category}: ours={ours} official={theirs}\ncalls={calls}\ntruth={truth}"
    )
    return theirs


# ---------------------------------------------------------------- hand-made edge cases

F_AREA = {
    "name": "geo.area",
    "parameters": {
        "type": "dict",
        "required": ["base", "height"],
        "properties": {
            "base": {"type": "float"},
            "height": {"type": "integer"},
            "unit": {"type": "string"},
            "exact": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "weights": {"type": "array", "items": {"type": "float"}},
            "opts": {"type": "dict", "properties": {}},
            "rows": {"type": "array", "items": {"type": "dict"}},
            "anything": {"type": "any"},
        },
    },
}
T_AREA = {
    "geo.area": {
        "base": [10.0],
        "height": [5],
        "unit": ["square meters", "m2", ""],
        "exact": [True, ""],
        "tags": [["a b", "C"], ""],
        "weights": [[0.5, 1.0], ""],
        "opts": [{"mode": ["fast"], "depth": [2, ""]}, ""],
        "rows": [[{"k": ["x"]}, {"k": ["y"]}], ""],
        "anything": ["z", ""],
    }
}
F_OTHER = {
    "name": "other_fn",
    "parameters": {"type": "dict", "required": ["x"], "properties": {"x": {"type": "integer"}}},
}


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(name=name, arguments=arguments)


def area(**changes: Any) -> list[ToolCall]:
    """One call to geo.area: the right base and height, changed or extended by ``changes``."""
    return [call("geo.area", **{"base": 10.0, "height": 5, **changes})]


S = "simple_python"
EDGE_CASES: list[tuple[str, str, list[ToolCall] | None, bool]] = [
    ("exact", S, area(), True),
    ("int for float", S, area(base=10), True),
    ("float for int", S, area(height=5.0), False),
    ("bool for int", S, area(height=True), False),
    ("string for int", S, area(height="5"), False),
    ("string normalised", S, area(unit="Square-Meters"), True),
    ("string wrong", S, area(unit="feet"), False),
    ("missing required", S, [call("geo.area", base=10.0)], False),
    ("extra parameter", S, area(z=1), False),
    ("wrong name", S, [call("geo_area", base=10.0, height=5)], False),
    ("two calls", S, area() * 2, False),
    ("no call", S, [], False),
    ("unparseable", S, None, False),
    ("list normalised", S, area(tags=["AB", "c"]), True),
    ("list order matters", S, area(tags=["C", "a b"]), False),
    ("ints in float list", S, area(weights=[1, 1]), False),
    ("float list", S, area(weights=[0.5, 1.0]), True),
    ("nested dict", S, area(opts={"mode": "FAST"}), True),
    ("nested dict extra key", S, area(opts={"mode": "fast", "x": 1}), False),
    ("nested dict missing key", S, area(opts={"depth": 2}), False),
    ("nested dict bad value", S, area(opts={"mode": "slow"}), False),
    ("list of dicts", S, area(rows=[{"k": "x"}, {"k": "Y"}]), True),
    ("list of dicts order", S, area(rows=[{"k": "y"}, {"k": "x"}]), False),
    ("list of dicts count", S, area(rows=[{"k": "x"}]), False),
    ("bool", S, area(exact=True), True),
    ("bool as string", S, area(exact="true"), False),
    ("any as string", S, area(anything="Z"), True),
    ("any as int", S, area(anything=3), False),
    ("multiple right", "multiple", area(), True),
    ("multiple wrong function", "multiple", [call("other_fn", x=1)], False),
    ("irrelevance no call", "irrelevance", [], True),
    ("irrelevance unparseable", "irrelevance", None, True),
    ("irrelevance called", "irrelevance", [call("other_fn", x=1)], False),
]


@pytest.mark.parametrize(
    "label,category,calls,expected", EDGE_CASES, ids=[e[0] for e in EDGE_CASES]
)
def test_edge_cases_agree(official, label, category, calls, expected) -> None:
    functions = [F_AREA, F_OTHER] if category != "simple_python" else [F_AREA]
    truth = [T_AREA] if category != "irrelevance" else []
    valid, _ = _agree(official, category, functions, truth, calls)
    assert valid is expected, label


# Without "" among the acceptable values, the list rules apply in full (no optional escape).
F_LISTS = {
    "name": "lists",
    "parameters": {
        "type": "dict",
        "required": ["weights", "rows"],
        "properties": {
            "weights": {"type": "array", "items": {"type": "float"}},
            "rows": {"type": "array", "items": {"type": "dict"}},
            "pair": {"type": "tuple", "items": {"type": "integer"}},
        },
    },
}
T_LISTS = {
    "lists": {
        "weights": [[0.5, 1.0]],
        "rows": [[{"k": ["x"]}, {"k": ["y"]}]],
        "pair": [[1, 2], [2, 1]],
    }
}
LIST_CASES: list[tuple[str, list[ToolCall], bool]] = [
    (
        "all right",
        [call("lists", weights=[0.5, 1.0], rows=[{"k": "x"}, {"k": "y"}], pair=[1, 2])],
        True,
    ),
    (
        "second acceptable tuple",
        [call("lists", weights=[0.5, 1.0], rows=[{"k": "x"}, {"k": "y"}], pair=[2, 1])],
        True,
    ),
    (
        "ints in float list",
        [call("lists", weights=[1, 1], rows=[{"k": "x"}, {"k": "y"}], pair=[1, 2])],
        False,
    ),
    (
        "dicts swapped",
        [call("lists", weights=[0.5, 1.0], rows=[{"k": "y"}, {"k": "x"}], pair=[1, 2])],
        False,
    ),
    (
        "dict bad key",
        [call("lists", weights=[0.5, 1.0], rows=[{"j": "x"}, {"k": "y"}], pair=[1, 2])],
        False,
    ),
    (
        "strings in int tuple",
        [call("lists", weights=[0.5, 1.0], rows=[{"k": "x"}, {"k": "y"}], pair=["1", "2"])],
        False,
    ),
    (
        "optional pair missing",
        [call("lists", weights=[0.5, 1.0], rows=[{"k": "x"}, {"k": "y"}])],
        False,
    ),
]


@pytest.mark.parametrize("label,calls,expected", LIST_CASES, ids=[c[0] for c in LIST_CASES])
def test_list_rules_agree(official, label, calls, expected) -> None:
    valid, _ = _agree(official, "simple_python", [F_LISTS], [T_LISTS], calls)
    assert valid is expected, label


PARALLEL_TRUTH = [
    {"geo.area": {"base": [1.0], "height": [1]}},
    {"geo.area": {"base": [2.0], "height": [2]}},
    {"other_fn": {"x": [3]}},
]
PARALLEL_CASES: list[tuple[str, list[ToolCall], bool]] = [
    (
        "in order",
        [
            call("geo.area", base=1, height=1),
            call("geo.area", base=2, height=2),
            call("other_fn", x=3),
        ],
        True,
    ),
    (
        "any order",
        [
            call("other_fn", x=3),
            call("geo.area", base=2, height=2),
            call("geo.area", base=1, height=1),
        ],
        True,
    ),
    ("one missing", [call("geo.area", base=1, height=1), call("other_fn", x=3)], False),
    (
        "one extra",
        [
            call("geo.area", base=1, height=1),
            call("geo.area", base=2, height=2),
            call("other_fn", x=3),
            call("other_fn", x=3),
        ],
        False,
    ),
    (
        "duplicate instead",
        [
            call("geo.area", base=1, height=1),
            call("geo.area", base=1, height=1),
            call("other_fn", x=3),
        ],
        False,
    ),
    (
        "bad value",
        [
            call("geo.area", base=1, height=1),
            call("geo.area", base=2, height=3),
            call("other_fn", x=3),
        ],
        False,
    ),
]


@pytest.mark.parametrize("category", ["parallel", "parallel_multiple", "live_parallel"])
@pytest.mark.parametrize("label,calls,expected", PARALLEL_CASES, ids=[p[0] for p in PARALLEL_CASES])
def test_parallel_agree(official, category, label, calls, expected) -> None:
    valid, _ = _agree(official, category, [F_AREA, F_OTHER], PARALLEL_TRUTH, calls)
    assert valid is expected, label


# ---------------------------------------------------------------- mutations of real cases


def _pick(values: list[Any], rng: random.Random) -> tuple[bool, Any]:
    """(present, value): one acceptable value, or absent when "" is acceptable."""
    choices = [v for v in values if v != ""]
    if not choices or ("" in values and rng.random() < 0.3):
        return (False, None)
    return (True, copy.deepcopy(rng.choice(choices)))


def _answer_call(answer: dict[str, Any], rng: random.Random, first: bool = False) -> ToolCall:
    name, params = next(iter(answer.items()))
    arguments = {}
    for param, values in params.items():
        if first:
            choices = [v for v in values if v != ""]
            if choices:
                arguments[param] = copy.deepcopy(choices[0])
            continue
        present, value = _pick(values, rng)
        if present:
            arguments[param] = value
    return ToolCall(name=name, arguments=arguments)


def _restyle(text: str, rng: random.Random) -> str:
    styles = [
        str.upper,
        str.lower,
        lambda s: s.replace(" ", "-"),
        lambda s: s + ".",
        lambda s: s.replace(" ", ""),
        lambda s: s + " x",
    ]
    return rng.choice(styles)(text)


def _mutate_value(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return rng.choice([not value, str(value).lower(), int(value)])
    if isinstance(value, int):
        return rng.choice([value + 1, float(value), str(value), -value])
    if isinstance(value, float):
        return rng.choice([value + 1.5, int(value), str(value), round(value * 2, 3)])
    if isinstance(value, str):
        return rng.choice([_restyle(value, rng), _restyle(value, rng), value[::-1], 7, ""])
    if isinstance(value, list):
        options: list[Any] = [
            list(reversed(value)),
            value[:-1],
            [*value, copy.deepcopy(value[0])] if value else ["x"],
            [_mutate_value(v, rng) for v in value],
            "",
        ]
        return rng.choice(options)
    if isinstance(value, dict):
        mutated = dict(value)
        if mutated and rng.random() < 0.5:
            key = rng.choice(sorted(mutated))
            if rng.random() < 0.5:
                del mutated[key]
            else:
                mutated[key] = _mutate_value(mutated[key], rng)
        else:
            mutated["unexpected_key"] = 1
        return mutated
    return "?"


def _mutations(case: Case, rng: random.Random) -> Iterator[tuple[str, list[ToolCall] | None]]:
    truth = [dict(a) for a in case.ground_truth]
    names = [f["name"] for f in case.functions]
    if not truth:  # irrelevance
        yield "no call", []
        yield "unparseable", None
        if not case.functions:  # a few live_irrelevance cases offer no function at all
            yield "called", [ToolCall(name="made_up")]
            return
        function = rng.choice(list(case.functions))
        arguments = {p: 1 for p in (function["parameters"].get("required") or [])}
        yield "called", [ToolCall(name=function["name"], arguments=arguments)]
        return
    yield "first answers", [_answer_call(a, rng, first=True) for a in truth]
    yield "random answers", [_answer_call(a, rng) for a in truth]
    shuffled = [_answer_call(a, rng) for a in truth]
    rng.shuffle(shuffled)
    yield "shuffled", shuffled
    base = [_answer_call(a, rng, first=True) for a in truth]
    target = rng.randrange(len(base))
    victim = base[target]

    def replace(arguments: dict[str, Any]) -> list[ToolCall]:
        calls = list(base)
        calls[target] = ToolCall(name=victim.name, arguments=arguments)
        return calls

    if victim.arguments:
        param = rng.choice(sorted(victim.arguments))
        arguments = dict(victim.arguments)
        yield "value", replace({**arguments, param: _mutate_value(arguments[param], rng)})
        yield "value again", replace({**arguments, param: _mutate_value(arguments[param], rng)})
        del arguments[param]
        yield "dropped parameter", replace(arguments)
    yield "extra parameter", replace({**victim.arguments, "zz_extra": 1})
    schema_params = sorted(
        next(f for f in case.functions if f["name"] == victim.name)["parameters"].get(
            "properties", {}
        )
    )
    unused = [p for p in schema_params if p not in victim.arguments]
    if unused:
        yield "unused schema parameter", replace({**victim.arguments, unused[0]: "x"})
    other = [n for n in names if n != victim.name]
    yield "wrong function", replace_name(base, target, rng.choice(other) if other else "made_up")
    yield "underscored name", replace_name(base, target, victim.name.replace(".", "_"))
    yield "no call", []
    yield "one extra call", [*base, copy.deepcopy(base[target])]
    if len(base) > 1:
        yield "one call missing", base[:-1]


def replace_name(calls: list[ToolCall], index: int, name: str) -> list[ToolCall]:
    out = list(calls)
    out[index] = ToolCall(name=name, arguments=calls[index].arguments)
    return out


def test_mutated_real_outputs_agree(official) -> None:
    """A sample of cases by default; every case of every category with FNCALL_CROSSCHECK_FULL=1."""
    full = os.environ.get("FNCALL_CROSSCHECK_FULL") == "1"
    rng = random.Random(20260323)
    outcomes: Counter[tuple[str, bool]] = Counter()
    details: Counter[str] = Counter()
    checked = 0
    for category in CATEGORIES:
        per_category = None if full else 12 if category in AST_CATEGORIES else 8
        for case in sample_cases(load_category(category), per_category, seed=7):
            for label, calls in _mutations(case, rng):
                valid, detail = _agree(official, category, case.functions, case.ground_truth, calls)
                outcomes[(label, valid)] += 1
                details[detail] += 1
                checked += 1
    assert checked >= 500
    # The generated outputs exercise both verdicts and many distinct error codes.
    assert outcomes[("first answers", True)] >= 90
    assert sum(n for (label, ok), n in outcomes.items() if not ok) >= 300
    assert len(details) >= 12, details
    if full:
        print(f"\ncross-check: {checked} outputs, all verdicts identical to the official checker")
        for detail, count in sorted(details.items()):
            print(f"  {detail or 'valid'}: {count}")
