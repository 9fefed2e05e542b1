"""A token budget for plain-text answers under an auto grammar (evaluation, routing)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import function_tool
from fncall.constrain import build_constraint, byte_vocabulary
from fncall.constrain.text_budget import TextBudget
from fncall.engine.scripted import ScriptedEngine
from fncall.engine.testing import decode_fake_model
from fncall.errors import UserError
from fncall.formats import get_format
from fncall.pipeline import LocalChat

WEATHER = function_tool("get_weather", city={"type": "string"})
VOCAB, EOS = byte_vocabulary()
CALL = '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'


@pytest.mark.parametrize(
    ("syntax", "text", "is_text", "is_call"),
    [
        ("json", "", False, False),
        ("json", "I", True, False),
        ("json", "[", False, True),
        ("json", "`", False, False),  # may still open a ```json fence
        ("json", "``", False, False),
        ("json", "```", False, False),
        ("json", "`x", True, False),  # inline code
        ("json", "```py", True, False),  # a fence in another language
        ("json", "```j", False, True),
        ("hermes", "<", False, True),
        ("hermes", "No", True, False),
        ("pythonic", "[", False, True),
        ("llama3", "{", False, True),
    ],
)
def test_branch_is_known_from_the_first_characters(
    syntax: str, text: str, is_text: bool, is_call: bool
) -> None:
    fmt = get_format(syntax)
    assert fmt.took_text_branch(text) is is_text
    assert fmt.took_call_branch(text) is is_call


def _decode(constraint, text: str) -> tuple[str, str, int]:  # type: ignore[no-untyped-def]
    """Decode with a fake model that wants to write ``text``, then end."""
    wanted = text.encode()

    def next_logits(so_far: str) -> np.ndarray:
        done = len(so_far.encode())
        logits = np.full(len(VOCAB), -10.0, dtype=np.float32)
        logits[wanted[done] if done < len(wanted) else EOS] = 10.0
        return logits

    return decode_fake_model(constraint, next_logits, max_tokens=200)


def _auto() -> object:
    constraint = build_constraint([WEATHER], tool_choice="auto", syntax=get_format("json"))
    assert constraint is not None
    return constraint


PROSE = "No function here can tell you that; it depends on the recipe."


def test_text_answer_stops_at_the_budget() -> None:
    full, _, n_full = _decode(_auto(), PROSE)
    cut, _, n_cut = _decode(TextBudget(_auto(), 7), PROSE)  # type: ignore[arg-type]
    assert full == PROSE and n_full == len(PROSE)
    assert n_cut == 7 and cut == PROSE[:7]


def test_calls_are_not_cut_by_the_text_budget() -> None:
    text, _, _ = _decode(TextBudget(_auto(), 3), CALL)  # type: ignore[arg-type]
    assert text == CALL


def test_a_json_fence_is_a_call_and_another_fence_is_text() -> None:
    fenced = "```json\n" + CALL + "\n```"
    assert _decode(TextBudget(_auto(), 2), fenced)[0] == fenced  # type: ignore[arg-type]
    code = "```python\nprint('no function fits')\n```"
    assert _decode(TextBudget(_auto(), 5), code)[0] == code[:5]  # type: ignore[arg-type]


def test_bad_budget_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="budget must be >= 1, got 0"):
        TextBudget(_auto(), 0)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="text_max_tokens must be a positive integer"):
        LocalChat(ScriptedEngine(), text_max_tokens=-3)


def test_local_chat_applies_the_budget_to_auto_only() -> None:
    engine = ScriptedEngine([PROSE, CALL, CALL])
    chat = LocalChat(engine, format="json", text_max_tokens=10)
    turn = chat.complete("How long do I boil an egg?", [WEATHER])
    assert isinstance(engine.requests[-1].constraint, TextBudget)
    assert turn.content == PROSE and turn.finish_reason == "length"  # scripted: not cut itself
    turn = chat.complete("Weather in Paris?", [WEATHER])
    assert turn.tool_calls[0].arguments == {"city": "Paris"} and turn.finish_reason == "tool_calls"
    chat.complete("Weather in Paris?", [WEATHER], tool_choice="required")
    assert not isinstance(engine.requests[-1].constraint, TextBudget)
    plain = LocalChat(ScriptedEngine([PROSE]), format="json")
    assert plain.complete("How long do I boil an egg?", [WEATHER]).finish_reason == "stop"
