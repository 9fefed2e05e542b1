"""The TokenMatcher an engine drives, and schema degradation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import function_tool
from fncall.constrain import (
    Constraint,
    TokenMatcher,
    build_constraint,
    byte_vocabulary,
    normalize_schema,
)
from fncall.constrain.llguidance_backend import MAX_DIGIT_RUN, LLGuidanceConstraint
from fncall.constrain.schema import BOUND_LIMIT, FORMAT_PATTERNS, INT_LIMIT, MAX_ITEMS
from fncall.constrain.testing import accepts, greedy_tokens
from fncall.engine.testing import decode_fake_model
from fncall.errors import ModelOutputError
from fncall.formats import get_format
from fncall.types import Tool

WEATHER = function_tool("get_weather", city={"type": "string"})
VOCAB, EOS = byte_vocabulary()
BOARD = Tool(
    name="play",
    parameters={
        "type": "object",
        "properties": {"board": {"type": "array", "items": {"type": "integer"}}},
        "required": ["board"],
    },
)


def compiled(tools: list[Tool], *, syntax: str = "json", **options: Any) -> LLGuidanceConstraint:
    constraint = build_constraint(tools, syntax=get_format(syntax), **options)
    assert constraint is not None
    return constraint


def test_implements_the_protocols() -> None:
    constraint = compiled([WEATHER])
    assert isinstance(constraint, Constraint)
    assert isinstance(constraint.matcher(VOCAB, [EOS]), TokenMatcher)


def test_decode_loop_with_forced_tokens_finishes() -> None:
    """Drive it as engine/decoding.py does: forced tokens, then mask -> pick -> advance."""
    constraint = compiled(
        [WEATHER], tool_choice="required", parallel_tool_calls=False, syntax="hermes"
    )
    assert constraint is not None
    matcher = constraint.matcher(VOCAB, [EOS])
    forced = matcher.forced_tokens()
    for token in forced:
        matcher.advance(token)
    expected = b'<tool_call>\n{"name": "get_weather", "arguments": {"city": "'
    assert b"".join(VOCAB[t] for t in forced) == expected[: len(b"".join(VOCAB[t] for t in forced))]
    # the fixed opening is forced (whitespace inside the call is free, so no further)
    assert b"".join(VOCAB[t] for t in forced).startswith(b"<tool_call>\n")
    for token in greedy_tokens(
        expected[len(b"".join(VOCAB[t] for t in forced)) :] + b'Paris"}}\n</tool_call>', VOCAB
    ):
        if matcher.is_finished:
            break
        for forced_token in matcher.forced_tokens():
            matcher.advance(forced_token)
        if matcher.is_finished:
            break
        logits = np.zeros(len(VOCAB), dtype=np.float32)
        matcher.mask_logits(logits)
        if logits[token] == -np.inf:  # already forced past this piece
            continue
        matcher.advance(token)
    logits = np.zeros(len(VOCAB), dtype=np.float32)
    matcher.mask_logits(logits)
    assert np.flatnonzero(logits != -np.inf).tolist() == [EOS]
    assert matcher.text.endswith("}}\n</tool_call>")
    assert matcher.is_finished or matcher.is_accepting


def test_mask_is_in_place_and_handles_padded_logits() -> None:
    matcher = compiled([WEATHER], tool_choice="required").matcher(VOCAB, [EOS])
    logits = np.ones(len(VOCAB) + 7, dtype=np.float32)
    matcher.mask_logits(logits)
    assert np.all(logits[len(VOCAB) :] == -np.inf)
    allowed = np.flatnonzero(logits != -np.inf)
    # a call starts as a list, a bare object, or a fence
    assert all(VOCAB[t][:1] in (b"[", b"{") or VOCAB[t] in b"```json\n" for t in allowed)


def test_forbidden_token_raises_model_output_error() -> None:
    matcher = compiled([WEATHER], tool_choice="required").matcher(VOCAB, [EOS])
    with pytest.raises(ModelOutputError, match="not allowed"):
        matcher.advance(ord("H"))


def test_special_tokens_never_spell_text() -> None:
    vocab = [*VOCAB[:-1], b"<|im_start|>", b"<|endoftext|>", b"<|im_end|>"]
    matcher = compiled([WEATHER]).matcher(vocab, [len(vocab) - 1])
    logits = np.zeros(len(vocab), dtype=np.float32)
    matcher.mask_logits(logits)
    assert logits[len(vocab) - 3] == -np.inf and logits[len(vocab) - 2] == -np.inf
    assert logits[ord("H")] == 0.0


def test_end_token_only_after_complete_output() -> None:
    matcher = compiled([WEATHER]).matcher(VOCAB, [EOS])
    logits = np.zeros(len(VOCAB), dtype=np.float32)
    matcher.mask_logits(logits)
    assert logits[EOS] == -np.inf  # nothing written yet
    for token in greedy_tokens("Hi", VOCAB):
        matcher.advance(token)
    logits.fill(0.0)
    matcher.mask_logits(logits)
    assert logits[EOS] == 0.0 and not matcher.is_finished


def test_matchers_are_independent() -> None:
    constraint = compiled([WEATHER])
    first, second = constraint.matcher(VOCAB, [EOS]), constraint.matcher(VOCAB, [EOS])
    first.advance(ord("H"))
    second.advance(ord("["))
    assert first.text == "H" and second.text == "["


def test_custom_tokenize_is_used_for_forced_tokens() -> None:
    calls: list[bytes] = []

    def tokenize(data: bytes) -> list[int]:
        calls.append(data)
        return greedy_tokens(data, VOCAB)

    constraint = compiled([WEATHER], tool_choice="required", syntax="hermes")
    matcher = constraint.matcher(VOCAB, [EOS], tokenize=tokenize)
    assert b"".join(VOCAB[t] for t in matcher.forced_tokens()).startswith(b"<tool_call>\n")
    assert calls  # the forced text went through our tokenizer


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            {"type": "dict", "properties": {"x": {"type": "float"}}},
            {"type": "object", "properties": {"x": {"type": "number"}}},
        ),
        (
            {"type": "tuple", "items": {"type": "any"}},
            {"type": "array", "items": {}, "maxItems": MAX_ITEMS},
        ),
        (
            {"type": "string", "format": "email", "pattern": "^a", "description": "d"},
            {"type": "string"},
        ),
        (
            {"oneOf": [{"type": "float"}, {"type": "str"}]},
            {"anyOf": [{"type": "number"}, {"type": "string"}]},
        ),
        ({"type": "number", "maximum": 1e20, "minimum": -0.5}, {"type": "number", "minimum": -0.5}),
        (
            {
                "type": "object",
                "properties": {"a": {}},
                "patternProperties": {"^x": {}},
                "additionalProperties": False,
            },
            {"type": "object", "properties": {"a": {}}},
        ),
        ({"type": "mystery"}, {}),
    ],
)
def test_schema_normalisation_only_loosens(schema: dict, expected: dict) -> None:
    assert normalize_schema(schema) == expected


def test_array_length_is_bounded_unless_the_schema_says_otherwise() -> None:
    assert normalize_schema({"type": "array"})["maxItems"] == MAX_ITEMS
    assert normalize_schema({"type": "array", "maxItems": 3})["maxItems"] == 3
    long = normalize_schema({"type": "array", "minItems": MAX_ITEMS + 1})
    assert "maxItems" not in long  # never reject what the schema requires
    assert "maxItems" not in normalize_schema({"type": "string"})


def test_an_endless_list_is_closed_by_the_grammar() -> None:
    constraint = compiled([BOARD], tool_choice="required", syntax="json")
    head = '{"name": "play", "arguments": {"board": ['
    full = head + ", ".join(["0"] * MAX_ITEMS) + "]}}"
    assert accepts(constraint, full, VOCAB, EOS)
    too_long = head + ", ".join(["0"] * (MAX_ITEMS + 1)) + "]}}"
    assert not accepts(constraint, too_long, VOCAB, EOS)


def test_integers_are_bounded_unless_the_schema_says_otherwise() -> None:
    window = {"minimum": -INT_LIMIT, "maximum": INT_LIMIT}
    assert normalize_schema({"type": "integer"}) == {"type": "integer", **window}
    assert normalize_schema({"type": "int", "minimum": 0}) == {
        "type": "integer",
        "minimum": 0,
        "maximum": INT_LIMIT,
    }
    assert normalize_schema({"type": "integer", "exclusiveMaximum": 5})["minimum"] == -INT_LIMIT
    assert "maximum" not in normalize_schema({"type": "integer", "exclusiveMaximum": 5})
    assert normalize_schema({"type": ["integer", "null"]})["maximum"] == INT_LIMIT
    # A bound too large for the backend is dropped, and with it the window (looser): the
    # window could exclude every valid value.
    assert normalize_schema({"type": "integer", "maximum": 10**30}) == {"type": "integer"}
    above = {"type": "integer", "minimum": 10**19, "maximum": 10**20}
    schema = {"type": "object", "properties": {"x": above}, "required": ["x"]}
    constraint = compiled([Tool(name="f", parameters=schema)], tool_choice="required")
    assert accepts(constraint, f'[{{"name": "f", "arguments": {{"x": {10**19 + 5}}}}}]', VOCAB, EOS)
    for loose in ({"type": "number"}, {"type": ["integer", "number"]}, {}):
        assert "maximum" not in normalize_schema(loose)
    # Named values need no window, and one outside it would make the value unreachable.
    big = 2**63 - 1  # past INT_LIMIT (llguidance cannot name integers past 64 bits at all)
    for listed in ({"type": "integer", "const": big}, {"type": "integer", "enum": [1, big]}):
        assert "maximum" not in normalize_schema(listed)
        schema = {"type": "object", "properties": {"x": listed}, "required": ["x"]}
        constraint = compiled([Tool(name="f", parameters=schema)], tool_choice="required")
        assert accepts(constraint, f'[{{"name": "f", "arguments": {{"x": {big}}}}}]', VOCAB, EOS)


@pytest.mark.parametrize("kind", ["integer", "number", ["integer", "null"], ["number", "string"]])
@pytest.mark.parametrize(
    "bounds",
    [
        {},
        {"minimum": 0},
        {"maximum": -5},
        {"minimum": 1.5, "maximum": 1e6},
        {"exclusiveMinimum": -BOUND_LIMIT, "exclusiveMaximum": BOUND_LIMIT},
        {"minimum": -(10**19)},
        {"maximum": 1e20},
        {"minimum": -1e300, "maximum": 1e300},
        {"maximum": 2**63 - 1},
    ],
)
def test_every_numeric_bound_compiles(kind: Any, bounds: dict[str, Any]) -> None:
    """llguidance refuses some large bounds (1e19, -10**19, 2**63 - 1); those are dropped
    rather than losing the whole tool's grammar to the "any object" fallback."""
    import warnings

    schema = {"type": "object", "properties": {"x": {"type": kind, **bounds}}}
    tool = Tool(name="f", parameters=schema)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        constraint = compiled([tool], tool_choice="required", syntax="json")
    assert not accepts(constraint, '[{"name": "f", "arguments": {"x": {}}}]', VOCAB, EOS)


def _endless_number_model(vocab: list[bytes]):  # type: ignore[no-untyped-def]
    """Logits of a model that writes 9s forever where a number goes (and never closes)."""
    preference = {b"9": 5.0, b"}": -1.0, b"]": -2.0, b")": -2.0, b";": -3.0, b",": -3.0}
    preference |= {bytes([c]): -20.0 for c in b" \n\r\t"}
    base = np.full(len(vocab), -10.0, dtype=np.float32)
    for piece, score in preference.items():
        base[vocab.index(piece)] = score
    return lambda text: base.copy()


@pytest.mark.parametrize("syntax", ["json", "hermes", "pythonic", "llama3"])
@pytest.mark.parametrize("kind", ["integer", "number"])
def test_an_endless_number_is_closed_by_the_grammar(syntax: str, kind: str) -> None:
    """BFCL parallel_18: a 400-digit integer the validator refuses; now the grammar ends it."""
    from fncall.tools.validation import validate_arguments

    schema = {"type": "object", "properties": {"n": {"type": kind}}, "required": ["n"]}
    tool = Tool(name="f", parameters=schema)
    constraint = compiled([tool], tool_choice="required", parallel_tool_calls=False, syntax=syntax)
    text, finish, _ = decode_fake_model(constraint, _endless_number_model(VOCAB), max_tokens=200)
    assert finish == "stop", text
    value = get_format(syntax).parse(text).tool_calls[0].arguments["n"]
    # Integers: the grammar's bound (19 digits). JSON numbers: the matcher's digit run (40).
    digits = 19 if kind == "integer" or syntax == "pythonic" else MAX_DIGIT_RUN
    assert value > 0 and len(str(int(value))) <= digits
    assert validate_arguments(tool, {"n": value}) == {"n": value}


def test_digit_runs_inside_strings_and_free_text_are_not_cut() -> None:
    many = "1" * (MAX_DIGIT_RUN + 20)
    constraint = compiled([WEATHER], syntax="json")
    assert accepts(constraint, f'[{{"name": "get_weather", "arguments": {{"city": "{many}"}}}}]')
    assert accepts(constraint, f"The number is {many}.")
    number = Tool(name="f", parameters={"type": "object", "properties": {"x": {"type": "number"}}})
    constraint = compiled([number], tool_choice="required", syntax="json")
    for digits, admitted in ((MAX_DIGIT_RUN, True), (MAX_DIGIT_RUN + 1, False)):
        call = f'[{{"name": "f", "arguments": {{"x": 0.{"1" * digits}}}}}]'
        assert accepts(constraint, call) is admitted


def _validator_accepts(fmt: str, value: str) -> bool:
    from fncall.tools.validation import schema_validator

    return bool(schema_validator({"type": "string", "format": fmt}).is_valid(value))


def _dates(years: list[str]) -> list[str]:
    odd = ["", "2021-1-05", "20210105", "2021-01-05T00:00", " 2021-01-05", "2021/01/05", "x"]
    return odd + [f"{y}-{m:02d}-{d:02d}" for y in years for m in range(14) for d in range(33)]


def test_format_patterns_match_the_validator_exactly() -> None:
    import re

    years = [f"{y:04d}" for y in [*range(0, 10000, 37), 0, 1, 4, 100, 400, 1900, 2000, 2024]]
    octets = [str(n) for n in range(300)] + ["00", "01", "010", "-1", "1a", "", " 1", "\u0661"]
    values = {
        "date": _dates(years),
        "ipv4": [f"{a}.{b}.7.{a}" for a in octets for b in ("0", "255", "256", "05")]
        + ["1.2.3", "1.2.3.4.5", "1..3.4", "1.2.3.4\n"],
    }
    for fmt, samples in values.items():
        # Anchored as the grammar reads it (Python's "$" would also match before a final "\n").
        pattern = re.compile(FORMAT_PATTERNS[fmt].removeprefix("^").removesuffix("$"))
        wrong = [v for v in samples if bool(pattern.fullmatch(v)) != _validator_accepts(fmt, v)]
        assert not wrong, (fmt, wrong[:5])
        assert any(_validator_accepts(fmt, v) for v in samples)


@pytest.mark.parametrize("syntax", ["json", "pythonic"])
def test_the_grammar_admits_a_formatted_string_exactly_when_the_validator_does(
    syntax: str,
) -> None:
    """BFCL parallel_multiple_63: "date": "" passed the grammar and failed the validator."""
    tool = Tool(
        name="f",
        parameters={
            "type": "object",
            "properties": {"d": {"type": "string", "format": "date"}, "ip": {"format": "ipv4"}},
            "required": ["d"],
        },
    )
    constraint = compiled([tool], tool_choice="required", syntax=syntax)

    def call(value: str) -> str:
        if syntax == "json":
            return f'[{{"name": "f", "arguments": {{"d": "{value}"}}}}]'
        return f'[f(d="{value}")]'

    samples = _dates(["0000", "0001", "1900", "2000", "2023", "2024"])[::3]
    wrong = [v for v in samples if accepts(constraint, call(v)) != _validator_accepts("date", v)]
    assert not wrong, wrong[:5]
    # Without a "type" the format says nothing about non-strings: still any value.
    assert accepts(
        constraint,
        call("2024-02-29")[:-3] + ', "ip": 7}}]'
        if syntax == "json"
        else '[f(d="2024-02-29", ip=7)]',
    )


def test_unsupported_keywords_never_reject_valid_values() -> None:
    tool = Tool(
        name="f",
        parameters={
            "type": "object",
            "properties": {
                "when": {"type": "string", "format": "date-time", "pattern": "^\\d+$"},
                "n": {"type": "integer", "multipleOf": 7},
                "xs": {"type": "array", "items": {"type": "int"}, "uniqueItems": True},
                "any": {"type": "any"},
            },
            "required": ["when", "notdeclared"],
        },
    )
    constraint = compiled([tool], tool_choice="required")
    text = (
        '[{"name": "f", "arguments": {"when": "soon", "n": 3, "xs": [1, 1], '
        '"any": {"k": [null]}, "notdeclared": "v"}}]'
    )
    assert accepts(constraint, text)


def _endless_list_model(vocab: list[bytes]):  # type: ignore[no-untyped-def]
    """Logits of a model stuck in a loop: it always wants another '0,' and never a bracket
    (and no optional whitespace, so the layout is compact)."""
    preference = {b"0": 5.0, b",": 4.0, b"}": -1.0, b"]": -2.0, b'"': -3.0}
    preference |= {bytes([c]): -20.0 for c in b" \n\r\t"}
    base = np.full(len(vocab), -10.0, dtype=np.float32)
    for piece, score in preference.items():
        base[vocab.index(piece)] = score

    def next_logits(text: str) -> np.ndarray:
        return base.copy()

    return next_logits


@pytest.mark.parametrize("syntax", ["json", "hermes", "pythonic"])
def test_a_call_near_the_token_limit_is_closed_not_cut_off(syntax: str) -> None:
    constraint = compiled([BOARD], tool_choice="required", syntax=syntax)
    outputs = {
        wrap_up: decode_fake_model(
            constraint, _endless_list_model(VOCAB), max_tokens=60, wrap_up=wrap_up
        )
        for wrap_up in (0, 12)
    }
    cut, _, _ = outputs[0]
    with pytest.raises(ModelOutputError):
        get_format(syntax).parse(cut)  # without wrap-up the budget cuts the list off
    closed, finish, count = outputs[12]
    calls = get_format(syntax).parse(closed).tool_calls
    assert count <= 60 and finish == "length"
    assert [c.name for c in calls] == ["play"] and set(calls[0].arguments["board"]) == {0}


def test_open_quote_tracks_strings_and_escapes() -> None:
    from fncall.constrain.llguidance_backend import open_quote

    assert open_quote('{"a": "x\\"y', quotes='"') == ord('"')
    assert open_quote('{"a": "x"', quotes='"') is None
    assert open_quote("[f(a='it", quotes="\"'") == ord("'")
    assert open_quote("[f(a='it", quotes='"') is None


def test_wrap_up_ends_a_runaway_string_with_its_quote() -> None:
    base = np.full(len(VOCAB), -10.0, dtype=np.float32)
    for piece, score in {b"a": 5.0, b"'": 4.0, b")": 3.0, b"]": 2.0, b'"': -5.0}.items():
        base[VOCAB.index(piece)] = score  # string characters that look like closers come first
    for c in b" \n\r\t":
        base[c] = -20.0
    constraint = compiled([WEATHER], tool_choice="required", syntax="hermes")
    text, _, _ = decode_fake_model(constraint, lambda _: base.copy(), max_tokens=64, wrap_up=16)
    calls = get_format("hermes").parse(text).tool_calls
    assert calls[0].name == "get_weather" and calls[0].arguments["city"].startswith("a")


def test_a_schema_the_backend_cannot_compile_is_loosened_when_first_matched() -> None:
    """Compiling is deferred to the first matcher (validating first compiled twice); a tool
    whose schema llguidance refuses then accepts any object, with a warning naming it, and the
    other tools stay enforced."""
    from fncall.warnings import FncallWarning

    broken = Tool(
        name="broken",
        parameters={"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}},
    )
    fine = function_tool("fine", n={"type": "integer"})
    constraint = compiled([broken, fine], tool_choice="required")
    with pytest.warns(FncallWarning, match=r"'broken' \(.*missing"):
        assert accepts(constraint, '[{"name": "broken", "arguments": {"y": [1]}}]', VOCAB, EOS)
    assert not accepts(constraint, '[{"name": "fine", "arguments": {"n": "x"}}]', VOCAB, EOS)
    assert accepts(constraint, '[{"name": "fine", "arguments": {"n": 3}}]', VOCAB, EOS)
