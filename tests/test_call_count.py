"""How many calls a list gets: the odds of another call decide (fncall.constrain.call_count)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from conftest import WEATHER
from fncall.constrain import build_constraint, byte_vocabulary
from fncall.constrain.call_count import CallCount, Coverage
from fncall.engine.scripted import ScriptedEngine
from fncall.engine.testing import decode_fake_model
from fncall.errors import UserError
from fncall.formats import get_format
from fncall.pipeline import LocalChat
from fncall.types import Message

VOCAB, EOS = byte_vocabulary()
JSON_SCRIPT = (
    '[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
    '{"name": "get_weather", "arguments": {"city": "Lyon"}}]'
)
PYTHONIC_SCRIPT = '[get_weather(city="Paris"), get_weather(city="Lyon")]'


def _model(script: str, odds: tuple[float, ...]) -> Callable[[str], np.ndarray]:
    """A fake model that writes ``script``, except at its list decisions: after the k-th call it
    gives ``,`` the log-odds ``odds[k]`` against ``]`` (so greedy decoding ends the list wherever
    they are negative)."""
    decisions = [i for i, c in enumerate(script) if c in ",]" and script[i - 1] in "})"]

    def next_logits(text: str) -> np.ndarray:
        logits = np.full(len(VOCAB), -30.0, dtype=np.float32)
        at = len(text)
        if at in decisions:
            logits[VOCAB.index(b"]")] = 10.0
            logits[VOCAB.index(b",")] = 10.0 + odds[decisions.index(at)]
        elif script.startswith(text) and at < len(script):
            logits[VOCAB.index(script[at].encode())] = 10.0
        elif text.endswith("]") or not script.startswith(text):
            logits[EOS] = 10.0  # the list ended early: stop
        return logits

    return next_logits


def _decode(
    syntax: str,
    threshold: float | None,
    odds: tuple[float, ...],
    coverage: Coverage | None = None,
) -> tuple[str, int]:
    constraint = build_constraint([WEATHER], syntax=get_format(syntax))
    assert constraint is not None
    if threshold is not None:
        constraint = CallCount(constraint, threshold, coverage)
    script = JSON_SCRIPT if syntax == "json" else PYTHONIC_SCRIPT
    text, _, _ = decode_fake_model(constraint, _model(script, odds), max_tokens=200)
    return text, len(get_format(syntax).parse(text).tool_calls)


@pytest.mark.parametrize("syntax", ["json", "pythonic"])
def test_the_list_goes_on_while_the_odds_reach_the_threshold(syntax: str) -> None:
    odds = (-1.0, -5.0)  # after the first call: "]" likelier by e^1; after the second: by e^5
    assert _decode(syntax, None, odds)[1] == 1  # greedy ends after one call
    assert _decode(syntax, 0.0, odds)[1] == 1
    text, calls = _decode(syntax, -2.0, odds)  # -1 >= -2: another call; -5 < -2: the end
    assert calls == 2
    assert text == (JSON_SCRIPT if syntax == "json" else PYTHONIC_SCRIPT)


def test_a_high_threshold_ends_a_list_greedy_decoding_would_continue() -> None:
    assert _decode("json", None, (1.0, -5.0))[1] == 2
    assert _decode("json", 2.0, (1.0, -5.0))[1] == 1


def test_text_and_bare_calls_are_left_alone() -> None:
    """Brackets and commas in prose are not a list; a bare call object has no list to extend."""
    constraint = CallCount(build_constraint([WEATHER], syntax=get_format("json")), -100.0)
    bare = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    for script in ("Hello world, see [1], [2]", bare):

        def next_logits(text: str, script: str = script) -> np.ndarray:
            logits = np.full(len(VOCAB), -30.0, dtype=np.float32)
            if len(text) < len(script):
                logits[VOCAB.index(script[len(text)].encode())] = 10.0
            else:
                logits[EOS] = 10.0
            return logits

        text, _, _ = decode_fake_model(constraint, next_logits, max_tokens=100)
        assert text == script


def test_bad_thresholds_are_refused_with_the_value() -> None:
    constraint = build_constraint([WEATHER], syntax=get_format("json"))
    for bad in ("-1", float("nan"), True, None):
        with pytest.raises(UserError, match="call-count threshold"):
            CallCount(constraint, bad)  # type: ignore[arg-type]
    with pytest.raises(UserError, match=r"count_threshold must be .auto., a number"):
        LocalChat(ScriptedEngine(), count_threshold="low")  # type: ignore[arg-type]


def test_local_chat_decodes_under_the_count_only_when_lists_may_have_several_calls() -> None:
    engine = ScriptedEngine()
    engine.enqueue('[{"name": "get_weather", "arguments": {"city": "Paris"}}]')
    engine.enqueue('[{"name": "get_weather", "arguments": {"city": "Paris"}}]')
    chat = LocalChat(engine, format="json", judge=None, count_threshold=-2.0)
    chat.complete("Weather in Paris?", [WEATHER])
    chat.complete("Weather in Paris?", [WEATHER], parallel_tool_calls=False)
    first, second = engine.requests
    assert isinstance(first.constraint, CallCount) and first.constraint.threshold == -2.0
    assert not isinstance(second.constraint, CallCount)


@pytest.mark.parametrize("syntax", ["json", "pythonic"])
def test_near_the_token_limit_closing_the_list_beats_the_count(syntax: str) -> None:
    """A model stuck repeating a call gives another call high odds at every list decision, so the
    count keeps the list going; in the budget's last tokens the list must still be closed, not
    cut off unparsable (BFCL live runs met it: ``[sum(a=1, b=2), sum(a=1, b=2), ... sum(a=``)."""
    one = (
        '{"name": "get_weather", "arguments": {"city": "Paris"}}'
        if syntax == "json"
        else 'get_weather(city="Paris")'
    )
    script = "[" + ", ".join([one] * 40) + "]"
    odds = tuple([6.0] * 40)
    constraint = CallCount(build_constraint([WEATHER], syntax=get_format(syntax)), 0.0)
    text, finish, count = decode_fake_model(
        constraint, _model(script, odds), max_tokens=300, wrap_up=64
    )
    calls = get_format(syntax).parse(text).tool_calls  # raises if the list was cut off
    assert count <= 300 and finish == "length" and len(calls) >= 2
    # Every call but the one the wrap-up closed early is whole.
    assert all(call.arguments == {"city": "Paris"} for call in calls[:-1])


@pytest.mark.parametrize("syntax", ["json", "pythonic"])
def test_a_value_the_request_named_and_no_call_used_keeps_the_list_going(syntax: str) -> None:
    """After Paris, "Lyon" is still unused: going on gets easier by ``more``; after Lyon every
    value is used, and ending gets easier by ``fewer``."""
    odds = (-2.0, -1.0)  # greedy and the plain threshold 0 stop after Paris
    cover = Coverage.of("Weather in Paris and Lyon?", more=3.0, fewer=0.0)
    assert cover.values == ("paris", "lyon")
    assert _decode(syntax, 0.0, odds)[1] == 1
    assert _decode(syntax, 0.0, odds, cover)[1] == 2  # -2 >= 0 - 3 after Paris; -1 < 0 after Lyon
    # Once every value is used the shift goes the other way: another call needs odds >= fewer.
    eager = (2.0, 1.0)  # the plain threshold 0 goes on after both calls (past the script)
    done = Coverage.of("Weather in Paris and Lyon?", more=0.0, fewer=1.5)
    assert _decode(syntax, 0.0, eager, done)[1] == 2  # Lyon unused: 2 >= 0; then 1 < 1.5
    only_paris = Coverage.of("Weather in Paris?", more=0.0, fewer=2.5)
    assert _decode(syntax, 0.0, eager, only_paris)[1] == 1  # Paris used: 2 < 0 + 2.5


def test_a_request_without_values_leaves_the_threshold_alone() -> None:
    cover = Coverage.of("what's the weather like?", more=5.0, fewer=5.0)
    assert cover.values == () and cover.shift("[get_weather(") == 0.0
    assert _decode("pythonic", 0.0, (-1.0, -5.0), cover)[1] == 1
    assert _decode("pythonic", 0.0, (1.0, -5.0), cover)[1] == 2


def test_bad_coverage_is_refused_with_the_value() -> None:
    for bad in (-1.0, float("nan"), float("inf"), "2", True):
        with pytest.raises(UserError, match="coverage more must be a number >= 0"):
            Coverage((), bad, 0.0)  # type: ignore[arg-type]
    constraint = build_constraint([WEATHER], syntax=get_format("json"))
    with pytest.raises(UserError, match="coverage must be a Coverage or None"):
        CallCount(constraint, 0.0, (2.0, 2.0))  # type: ignore[arg-type]
    for bad_option in ((2.0,), "high", (1.0, -1.0), 3.0):
        with pytest.raises(UserError, match=r"count_coverage must be|coverage fewer"):
            LocalChat(ScriptedEngine(), count_coverage=bad_option)  # type: ignore[arg-type]


def test_local_chat_covers_the_user_request_but_not_the_turn_after_results() -> None:
    engine = ScriptedEngine()
    engine.enqueue('[{"name": "get_weather", "arguments": {"city": "Paris"}}]')
    engine.enqueue("It is sunny.")
    chat = LocalChat(
        engine, format="json", judge=None, count_threshold=-2.0, count_coverage=(2.0, 1.0)
    )
    turn = chat.complete("Weather in Paris?", [WEATHER])
    call = turn.tool_calls[0]
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [call.to_openai()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
    ]
    chat.complete(history, [WEATHER])
    first, second = engine.requests
    assert first.constraint.coverage == Coverage(("paris",), 2.0, 1.0)
    assert isinstance(second.constraint, CallCount) and second.constraint.coverage is None
    # The tools' own words are not values: "Weather" names the function here.
    third = LocalChat(ScriptedEngine(), format="json", count_coverage=(2.0, 1.0))
    assert third._coverage(
        (Message(role="user", content="Weather Report for Rome"),), (WEATHER,)
    ) == Coverage(("report", "rome"), 2.0, 1.0)
