"""The AST checker: BFCL's rules for judging a model's calls against the acceptable answers.

Our own implementation of the rules of BFCL's ``ast_checker`` (Python), kept verdict-for-verdict
identical to it (``tests/test_eval_crosscheck.py`` runs both on the same outputs), including its
quirks: parallel calls are matched greedily in ground-truth order; nested types are checked one
level deep; an ``int`` is accepted for ``float`` but not inside a list of floats; ``bool`` is not
an ``int``; a value whose type matches the answer's type rather than the schema's (a "variable")
is compared as is, without string normalisation.

``Verdict.detail`` carries BFCL's own error code (``value_error:string``...); ``error_type`` the
coarser taxonomy of ``ERROR_TYPES``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from fncall.types import ToolCall

if TYPE_CHECKING:
    from fncall.evaluate.data import Case

ErrorType = Literal[
    "wrong_function",
    "missing_parameter",
    "extra_parameter",
    "wrong_type",
    "wrong_value",
    "wrong_count",
    "unparseable",
    "called_when_should_not",
    "no_call",
    "model_error",
]
ERROR_TYPES: dict[str, str] = {
    "wrong_function": "wrong function",
    "missing_parameter": "missing parameter",
    "extra_parameter": "extra parameter",
    "wrong_type": "wrong type",
    "wrong_value": "wrong value",
    "wrong_count": "wrong number of calls",
    "unparseable": "unparseable output",
    "called_when_should_not": "called when it should not",
    "no_call": "did not call when it should",
    "model_error": "model failed to answer (inference error)",
}

# BFCL parameter type -> the Python type a JSON-decoded value must have.
PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
_NESTED = ("array", "tuple")
_NORMALISE = re.compile(r"[ ,./\-_*^]")


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """Whether the calls are acceptable; if not, why (taxonomy), BFCL's code, and a message."""

    valid: bool
    error_type: ErrorType | None = None
    detail: str = ""
    message: str = ""


PASS = Verdict(valid=True)


class _Fail(Exception):
    """Raised inside the per-call rules; carries the verdict."""

    def __init__(self, error_type: ErrorType, detail: str, message: str) -> None:
        super().__init__(message)
        self.verdict = Verdict(valid=False, error_type=error_type, detail=detail, message=message)


def normalise_string(text: str) -> str:
    """BFCL's string comparison key: no spaces or ``,./-_*^``, lower case, ``'`` -> ``"``."""
    return _NORMALISE.sub("", text).lower().replace("'", '"')


def _norm(value: Any) -> Any:
    return normalise_string(value) if type(value) is str else value


def _answer_type(answers: Sequence[Any]) -> type | None:
    """The type of the first acceptable value that is not the "may be omitted" marker."""
    return next((type(a) for a in answers if a != ""), None)


def _check_type(
    param: str, value: Any, answers: Any, bfcl_type: str, expected: type, nested: type | None
) -> bool:
    """Raise ``_Fail`` on a type error; return whether the value is a "variable"."""
    answer_type = _answer_type(answers)
    variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if nested is None:
            return variable
        items: Any = value  # a list: its type is ``expected``, one of the nested types
        for answer in answers:
            if type(answer) is not list or all(
                _item_type_ok(item, answer, nested) for item in items
            ):
                return variable
        if type(value) is answer_type:
            raise _Fail(
                "wrong_type",
                "type_error:nested",
                f"{param!r}: expected {bfcl_type} of {nested.__name__}, got {value!r}",
            )
    elif type(value) is answer_type:
        return True
    raise _Fail(
        "wrong_type",
        "type_error:simple",
        f"{param!r}: expected type {bfcl_type}, got {type(value).__name__} ({value!r})",
    )


def _item_type_ok(item: Any, answer: Sequence[Any], expected: type) -> bool:
    return type(item) is expected or type(item) is _answer_type(answer)


def _check_dict(param: str, value: Mapping[str, Any], answers: Sequence[Any]) -> None:
    failure: _Fail | None = None
    for answer in answers:
        if answer == "":
            continue
        failure = _dict_mismatch(param, value, answer)
        if failure is None:
            return
    raise failure or _Fail(
        "wrong_value", "dict_checker:unclear", f"{param!r}: no acceptable dictionary for {value!r}"
    )


def _dict_mismatch(param: str, value: Any, answer: Any) -> _Fail | None:
    if not isinstance(value, Mapping):
        return _Fail(
            "wrong_value",
            "value_error:dict_value",
            f"{param!r}: expected a dictionary, got {value!r}",
        )
    failure: _Fail | None = None
    for key, item in value.items():
        if key not in answer:
            failure = _Fail(
                "wrong_value", "value_error:dict_key", f"{param!r}: unexpected key {key!r}"
            )
            break
        if _norm(item) not in [_norm(a) for a in answer[key]]:
            failure = _Fail(
                "wrong_value",
                "value_error:dict_value",
                f"{param!r}[{key!r}]: {item!r} is not one of {answer[key]!r}",
            )
            break
    # BFCL looks for missing keys even after a bad one, and then reports the missing key.
    for key, acceptable in answer.items():
        if key not in value and "" not in acceptable:
            return _Fail("wrong_value", "value_error:dict_key", f"{param!r}: missing key {key!r}")
    return failure


def _check_list_of_dicts(param: str, value: Sequence[Any], answers: Sequence[Any]) -> None:
    failure = _Fail("wrong_value", "list_dict_checker:unclear", f"{param!r}: no acceptable list")
    for answer in answers:
        if len(value) != len(answer):
            failure = _Fail(
                "wrong_value",
                "value_error:list_dict_count",
                f"{param!r}: expected {len(answer)} dictionaries, got {len(value)}",
            )
            continue
        mismatch = None
        for item, expected in zip(value, answer, strict=True):
            try:
                _check_dict(param, item, [expected])
            except _Fail as exc:
                mismatch = exc
                break
        if mismatch is None:
            return
        failure = mismatch
    raise failure


def _check_value(
    param: str,
    value: Any,
    answers: Sequence[Any],
    expected: type,
    nested: type | None,
    variable: bool,
) -> None:
    if not variable:
        if expected is dict:
            return _check_dict(param, value, answers)
        if expected is list and nested is dict:
            return _check_list_of_dicts(param, value, answers)
        if expected is str:
            if _norm(value) not in [_norm(a) for a in answers if type(a) is str]:
                raise _Fail(
                    "wrong_value",
                    "value_error:string",
                    f"{param!r}: {value!r} is not one of {list(answers)!r}",
                )
            return None
        if expected is list:
            if [_norm(v) for v in value] not in [[_norm(a) for a in ans] for ans in answers]:
                raise _Fail(
                    "wrong_value",
                    "value_error:list/tuple",
                    f"{param!r}: {value!r} is not one of {list(answers)!r}",
                )
            return None
    if value not in answers:
        raise _Fail(
            "wrong_value",
            "value_error:others",
            f"{param!r}: {value!r} is not one of {list(answers)!r}",
        )
    return None


def check_call(function: Mapping[str, Any], call: ToolCall, answer: Mapping[str, Any]) -> Verdict:
    """Check one call against one function doc and one ``{name: {param: [values]}}`` answer."""
    try:
        _check_call(function, call, answer)
    except _Fail as exc:
        return exc.verdict
    return PASS


def _check_call(function: Mapping[str, Any], call: ToolCall, answer: Mapping[str, Any]) -> None:
    name = function["name"]
    expected_args: Mapping[str, Sequence[Any]] = next(iter(answer.values()))
    schema = function.get("parameters") or {}
    properties = schema.get("properties") or {}
    if call.name != name:
        raise _Fail(
            "wrong_function",
            "simple_function_checker:wrong_func_name",
            f"expected a call to {name!r}, got {call.name!r}",
        )
    arguments = dict(call.arguments)
    for param in schema.get("required") or ():
        if param not in arguments:
            raise _Fail(
                "missing_parameter",
                "simple_function_checker:missing_required",
                f"{name}: missing required parameter {param!r}",
            )
    for param, value in arguments.items():
        if param not in properties or param not in expected_args:
            raise _Fail(
                "extra_parameter",
                "simple_function_checker:unexpected_param",
                f"{name}: unexpected parameter {param!r}",
            )
        bfcl_type = properties[param].get("type", "any")
        expected = PYTHON_TYPES.get(bfcl_type, str)
        nested = None
        if bfcl_type in _NESTED:
            nested = PYTHON_TYPES.get((properties[param].get("items") or {}).get("type", ""), str)
        if bfcl_type == "tuple" and type(value) is tuple:
            value = list(value)
        if bfcl_type == "float" and type(value) is int:
            value = float(value)  # Python would convert it; so does BFCL
        answers = expected_args[param]
        variable = _check_type(param, value, answers, bfcl_type, expected, nested)
        _check_value(param, value, answers, expected, nested, variable)
    for param, answers in expected_args.items():
        if param not in arguments and "" not in answers:
            raise _Fail(
                "missing_parameter",
                "simple_function_checker:missing_optional",
                f"{name}: parameter {param!r} is missing and may not be omitted",
            )


def _find_function(functions: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    for function in functions:
        if function["name"] == name:
            return function
    raise KeyError(f"the ground truth calls {name!r}, which is not among the case's functions")


def _wrong_count(kind: str, calls: Sequence[ToolCall], expected: int) -> Verdict:
    error_type: ErrorType = "no_call" if not calls else "wrong_count"
    return Verdict(
        valid=False,
        error_type=error_type,
        detail=f"{kind}:wrong_count",
        message=f"expected {expected} call(s), got {len(calls)}",
    )


def _check_parallel(
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[ToolCall],
    ground_truth: Sequence[Mapping[str, Any]],
) -> Verdict:
    kind = "parallel_function_checker_no_order"
    if len(calls) != len(ground_truth):
        return _wrong_count(kind, calls, len(ground_truth))
    matched: set[int] = set()
    for position, answer in enumerate(ground_truth):
        name = next(iter(answer))
        function = _find_function(functions, name)
        failures: list[Verdict] = []
        for index, call in enumerate(calls):
            if index in matched:
                continue
            verdict = check_call(function, call, answer)
            if verdict.valid:
                matched.add(index)
                break
            failures.append(verdict)
        else:
            # Say why the closest candidate (a call to the right function, if any) failed.
            named = [v for v in failures if v.error_type != "wrong_function"]
            cause = (named or failures)[0]
            return Verdict(
                valid=False,
                error_type=cause.error_type,
                detail=f"{kind}:cannot_find_match",
                message=f"no call matches expected call #{position} ({name}): {cause.message}",
            )
    return PASS


def check_calls(
    category: str,
    functions: Sequence[Mapping[str, Any]],
    ground_truth: Sequence[Mapping[str, Any]],
    calls: Sequence[ToolCall] | None,
) -> Verdict:
    """Judge decoded ``calls`` (original function names; ``None`` = unparseable output).

    Irrelevance categories pass when no call decoded. Categories with ``parallel`` in the name
    match calls to answers in any order (same count); ``multiple`` ones expect one call to the
    right function among several; the rest expect exactly one call.
    """
    if "irrelevance" in category:
        if calls:
            names = ", ".join(c.name for c in calls)
            return Verdict(
                valid=False,
                error_type="called_when_should_not",
                detail="irrelevance_error:decoder_success",
                message=f"no function fits, but the model called {names}",
            )
        return PASS
    if calls is None:
        return Verdict(
            valid=False,
            error_type="unparseable",
            detail="ast_decoder:decoder_failed",
            message="the output could not be decoded into function calls",
        )
    if "parallel" in category:
        return _check_parallel(functions, calls, ground_truth)
    if "multiple" in category:
        if len(calls) != len(ground_truth):
            return _wrong_count("multiple_function_checker", calls, len(ground_truth))
        function = _find_function(functions, next(iter(ground_truth[0])))
    else:
        if len(calls) != 1:
            return _wrong_count("simple_function_checker", calls, 1)
        function = functions[0]  # a simple case has one function (BFCL takes the first)
    return check_call(function, calls[0], ground_truth[0])


def check_case(case: Case, calls: Sequence[ToolCall] | None) -> Verdict:
    """Judge calls the model made (with model-safe names) for a ``Case``."""
    restored = None if calls is None else case.restore_names(calls)
    return check_calls(case.category, case.functions, case.ground_truth, restored)
