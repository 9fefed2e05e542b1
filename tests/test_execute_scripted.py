"""The scripted fakes everybody's fast tests use: ScriptedChat and ScriptedEngine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fncall.engine.base import ChatDelta, ChatModel, Engine, Generation
from fncall.engine.scripted import (
    EOS_TOKEN_ID,
    ScriptedChat,
    ScriptedEngine,
    ScriptExhaustedError,
    turn_to_deltas,
)
from fncall.errors import UserError
from fncall.types import AssistantTurn, Message, Tool, ToolCall, ToolChoice

WEATHER = Tool(name="get_weather", parameters={"type": "object", "properties": {}})


def test_replays_turns_in_order_and_records_requests() -> None:
    chat = ScriptedChat([AssistantTurn(content="first"), "second"])
    messages = [Message(role="user", content="hi")]
    choice = ToolChoice(mode="required")

    first = chat.complete(messages, [WEATHER], tool_choice=choice, temperature=0.5)
    second = chat.complete(messages)

    assert (first.content, second.content) == ("first", "second")
    assert chat.remaining == 0
    assert chat.requests[0].messages == tuple(messages)
    assert chat.requests[0].tools == (WEATHER,)
    assert chat.requests[0].tool_choice == choice
    assert chat.requests[0].options == {"temperature": 0.5}
    assert chat.requests[1].tools == () and chat.requests[1].tool_choice is None


def test_callable_entries_see_the_request() -> None:
    seen = []

    def echo(messages, tools):
        seen.append((len(messages), [t.name for t in tools]))
        return f"you said {messages[-1].content}"

    chat = ScriptedChat([echo])
    turn = chat.complete([Message(role="user", content="ping")], [WEATHER])
    assert turn.content == "you said ping"
    assert seen == [(1, ["get_weather"])]


def test_running_out_of_script_is_a_clear_error() -> None:
    chat = ScriptedChat(["only"])
    chat.complete([Message(role="user", content="a")])
    with pytest.raises(ScriptExhaustedError, match=r"request #2 .* 1 scripted turn.*'b'"):
        chat.complete([Message(role="user", content="b")])


def test_rejects_entries_that_are_not_turns() -> None:
    with pytest.raises(UserError, match="AssistantTurn, a string, or a callable"):
        ScriptedChat([42])  # type: ignore[list-item]


def _reassemble(deltas: list[ChatDelta]) -> tuple[str, dict[int, dict[str, str]], str | None]:
    content, finish = "", None
    calls: dict[int, dict[str, str]] = {}
    for delta in deltas:
        content += delta.content or ""
        if delta.index is not None:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            call["name"] += delta.name or ""
            call["arguments"] += delta.arguments or ""
        finish = delta.finish_reason or finish
    return content, calls, finish


def test_stream_yields_openai_shaped_fragments() -> None:
    calls = (
        ToolCall(name="get_weather", arguments={"city": "Paris", "days": 3}, id="call_a"),
        ToolCall(name="get_time", arguments={"zone": "Europe/Paris"}, id="call_b"),
    )
    chat = ScriptedChat([AssistantTurn(content="Let me check.", tool_calls=calls)], chunk_size=3)

    deltas = list(chat.stream([Message(role="user", content="weather?")]))

    content, streamed, finish = _reassemble(deltas)
    assert content == "Let me check."
    assert finish == "tool_calls"
    assert streamed[0]["id"] == "call_a" and streamed[0]["name"] == "get_weather"
    assert json.loads(streamed[0]["arguments"]) == {"city": "Paris", "days": 3}
    assert json.loads(streamed[1]["arguments"]) == {"zone": "Europe/Paris"}
    # The header delta of each call carries id and name; later fragments carry only arguments.
    headers = [d for d in deltas if d.id is not None]
    assert [h.index for h in headers] == [0, 1]
    assert all(d.name is None for d in deltas if d.index is not None and d.id is None)
    assert chat.requests[0].streamed


def test_stream_of_text_turn_ends_with_its_finish_reason() -> None:
    deltas = turn_to_deltas(AssistantTurn(content="abcdefg", finish_reason="length"), chunk_size=2)
    assert [d.content for d in deltas[:-1]] == ["ab", "cd", "ef", "g"]
    assert deltas[-1] == ChatDelta(finish_reason="length")


def test_engine_replays_and_records() -> None:
    engine = ScriptedEngine(["hello", Generation(text="bye", cached_tokens=2)])
    pieces: list[str] = []

    out = engine.generate("prompt", on_text=pieces.append, seed=1)
    assert (out.text, out.prompt_tokens, out.completion_tokens) == ("hello", 6, 5)
    assert pieces == ["hello"]
    assert engine.generate("again").cached_tokens == 2
    assert [r.prompt for r in engine.requests] == ["prompt", "again"]
    assert engine.requests[0].seed == 1
    with pytest.raises(ScriptExhaustedError, match="generate call #3"):
        engine.generate("more")


def test_engine_applies_stop_and_max_tokens() -> None:
    engine = ScriptedEngine(["answer<|end|>junk", "0123456789"])
    stopped = engine.generate("p", stop=["<|end|>"])
    assert (stopped.text, stopped.finish_reason) == ("answer", "stop")
    cut = engine.generate("p", max_tokens=4)
    assert (cut.text, cut.finish_reason) == ("0123", "length")


def test_engine_template_and_vocabulary() -> None:
    engine = ScriptedEngine(chat_template="{{ messages }}")
    assert engine.chat_template == "{{ messages }}"
    engine.chat_template = None
    assert engine.chat_template is None
    vocabulary = engine.vocabulary()
    assert len(vocabulary) == 257 and vocabulary[65] == b"A" and vocabulary[EOS_TOKEN_ID] == b""


class _OnlyDigits:
    """A constraint accepting digits then end-of-sequence."""

    last: Any = None

    def matcher(self, vocabulary, eos_token_ids):
        outer = self

        class Matcher:
            finished = False

            def advance(self, token_id: int) -> None:
                if token_id in eos_token_ids:
                    self.finished = True
                elif not vocabulary[token_id].isdigit():
                    raise ValueError(f"token {vocabulary[token_id]!r} is not a digit")

            @property
            def is_finished(self) -> bool:
                return self.finished

        outer.last = Matcher()
        return outer.last


def test_engine_checks_scripted_text_against_a_constraint() -> None:
    constraint = _OnlyDigits()
    engine = ScriptedEngine(["123", "12a"])
    assert engine.generate("p", constraint=constraint).text == "123"  # type: ignore[arg-type]
    assert constraint.last.is_finished
    with pytest.raises(UserError, match=r"violates the constraint at byte 2"):
        engine.generate("p", constraint=constraint)  # type: ignore[arg-type]


def test_fakes_satisfy_the_engine_seams() -> None:
    engine: Engine = ScriptedEngine()
    model: ChatModel = ScriptedChat()
    assert isinstance(engine, Engine) and callable(model.stream)
