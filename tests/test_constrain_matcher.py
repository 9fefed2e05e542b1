"""The TokenMatcher an engine drives, and schema degradation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fncall.constrain import (
    Constraint,
    TokenMatcher,
    build_constraint,
    byte_vocabulary,
    normalize_schema,
)
from fncall.constrain.llguidance_backend import LLGuidanceConstraint
from fncall.constrain.schema import MAX_ITEMS
from fncall.constrain.testing import accepts, decode_fake_model, greedy_tokens
from fncall.errors import ModelOutputError
from fncall.types import Tool

WEATHER = Tool(
    name="get_weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
VOCAB, EOS = byte_vocabulary()
BOARD = Tool(
    name="play",
    parameters={
        "type": "object",
        "properties": {"board": {"type": "array", "items": {"type": "integer"}}},
        "required": ["board"],
    },
)


def compiled(tools: list[Tool], **options: Any) -> LLGuidanceConstraint:
    constraint = build_constraint(tools, **options)
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
            {"type": "string", "format": "date", "pattern": "^a", "description": "d"},
            {"type": "string"},
        ),
        (
            {"oneOf": [{"type": "int"}, {"type": "str"}]},
            {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        ),
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
    from fncall.formats import get_format

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

    assert open_quote('{"a": "x\\"y', python=False) == ord('"')
    assert open_quote('{"a": "x"', python=False) is None
    assert open_quote("[f(a='it", python=True) == ord("'")
    assert open_quote("[f(a='it", python=False) is None


def test_wrap_up_ends_a_runaway_string_with_its_quote() -> None:
    from fncall.formats import get_format

    base = np.full(len(VOCAB), -10.0, dtype=np.float32)
    for piece, score in {b"a": 5.0, b"'": 4.0, b")": 3.0, b"]": 2.0, b'"': -5.0}.items():
        base[VOCAB.index(piece)] = score  # string characters that look like closers come first
    for c in b" \n\r\t":
        base[c] = -20.0
    constraint = compiled([WEATHER], tool_choice="required", syntax="hermes")
    text, _, _ = decode_fake_model(constraint, lambda _: base.copy(), max_tokens=64, wrap_up=16)
    calls = get_format("hermes").parse(text).tool_calls
    assert calls[0].name == "get_weather" and calls[0].arguments["city"].startswith("a")
