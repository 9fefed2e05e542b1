"""How many calls a list gets: the odds of another call decide (fncall.constrain.call_count)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from conftest import WEATHER
from fncall.constrain import build_constraint, byte_vocabulary
from fncall.constrain.call_count import CallCount
from fncall.engine.scripted import ScriptedEngine
from fncall.engine.testing import decode_fake_model
from fncall.errors import UserError
from fncall.formats import get_format
from fncall.pipeline import LocalChat

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


def _decode(syntax: str, threshold: float | None, odds: tuple[float, ...]) -> tuple[str, int]:
    constraint = build_constraint([WEATHER], syntax=get_format(syntax))
    assert constraint is not None
    if threshold is not None:
        constraint = CallCount(constraint, threshold)
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
