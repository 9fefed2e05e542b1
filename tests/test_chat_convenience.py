"""``fncall.chat()``: ask, execute, answer — with a scripted engine."""

from __future__ import annotations

import pytest

from fncall.engine.scripted import ScriptedChat, ScriptedEngine
from fncall.errors import ModelOutputError, UserError
from fncall.execute import ChatResult, chat
from fncall.pipeline import LocalChat
from fncall.types import AssistantTurn, ToolCall


def get_weather(city: str) -> dict:
    """Current weather in a city.

    Args:
        city: The city name.
    """
    if city == "Atlantis":
        raise ValueError("no such city")
    return {"city": city, "temp_c": 21}


PARIS = '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'


def test_calls_are_executed_and_answered():
    engine = ScriptedEngine([PARIS, "It is 21 °C in Paris."])
    result = chat("Weather in Paris?", [get_weather], model=engine, format="json")
    assert isinstance(result, ChatResult)
    assert [(c.name, dict(c.arguments)) for c in result.calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert [r.content for r in result.results] == [{"city": "Paris", "temp_c": 21}]
    assert result.results[0].call_id == result.calls[0].id
    assert result.text == str(result) == "It is 21 °C in Paris."
    assert [m.role for m in result.messages] == ["user", "assistant", "tool", "assistant"]


def test_no_call_returns_the_text():
    result = chat("Hi", [get_weather], model=ScriptedEngine(["Hello!"]), format="json")
    assert result.calls == () and result.results == () and result.text == "Hello!"


def test_execute_false_returns_calls_only():
    engine = ScriptedEngine([PARIS])
    result = chat("Weather?", [get_weather], model=engine, execute=False, format="json")
    assert [c.name for c in result.calls] == ["get_weather"] and result.results == ()
    assert engine.remaining == 0


def test_tool_errors_go_back_to_the_model_and_later_calls_are_collected():
    model = ScriptedChat(
        [
            AssistantTurn(
                tool_calls=(ToolCall(name="get_weather", arguments={"city": "Atlantis"}),)
            ),
            AssistantTurn(tool_calls=(ToolCall(name="get_weather", arguments={"city": "Paris"}),)),
            "Atlantis has no weather service; Paris is 21 °C.",
        ]
    )
    result = chat(
        "Atlantis then Paris", [get_weather], model=model, tool_choice="required", max_steps=4
    )
    assert [r.ok for r in result.results] == [False, True]
    assert "ValueError: no such city" in result.results[0].error
    assert [dict(c.arguments)["city"] for c in result.calls] == ["Atlantis", "Paris"]
    assert model.requests[0].tool_choice.mode == "required"
    assert model.requests[1].tool_choice.mode == "auto"  # after results, the model may answer
    assert result.text.startswith("Atlantis has no weather service")


def test_unconstrained_garbage_is_fed_back_as_a_step():
    garbage = '```json\n{"name": "get_weather", "arguments": {"city"'
    engine = ScriptedEngine([garbage, "Sorry, which city?"])
    result = chat("Weather?", [get_weather], model=engine, constrained=False, format="json")
    assert result.calls == () and result.text == "Sorry, which city?"
    assert [m.role for m in result.messages] == ["user", "assistant", "user", "assistant"]
    assert "could not be used" in str(result.messages[2].content)
    with pytest.raises(ModelOutputError):  # a bad output stays an error for complete() itself
        LocalChat(ScriptedEngine([garbage]), constrained=False, format="json").complete(
            "Weather?", [get_weather]
        )


def test_a_chat_model_is_used_as_is():
    local = LocalChat(ScriptedEngine(["Hi."]), format="json")
    assert chat("Hello", [], model=local).text == "Hi."


def test_a_repeated_call_is_answered_instead_of_run_again():
    engine = ScriptedEngine([PARIS, PARIS, "21 °C in Paris."])
    result = chat("Weather in Paris?", [get_weather], model=engine, format="json", max_steps=3)
    assert len(result.calls) == 1 and len(result.results) == 1
    assert result.text == "21 °C in Paris."
    assert engine.requests[2].constraint is None  # the re-ask offered no tools


def test_the_last_step_must_answer():
    engine = ScriptedEngine([PARIS, "Done."])
    result = chat("Weather?", [get_weather], model=engine, format="json", max_steps=2)
    assert result.text == "Done." and engine.requests[1].constraint is None
    with pytest.raises(UserError, match="max_steps"):
        chat("Weather?", [get_weather], model=engine, max_steps=0)


# Registered before fncall is imported, so it runs after every handler fncall registers.
CLOSED_AT_EXIT = """
import atexit, sys
closed = []
atexit.register(lambda: print("closed before shutdown:", closed == ["smollm2-135m"]))
import fncall

def add(a: int, b: int) -> int:
    '''Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    '''
    return a + b

fncall.chat("What is 2 plus 3?", [add], model="smollm2-135m", max_tokens=8)
engine = sys.modules["fncall.execute.chat"]._ENGINES["smollm2-135m"]
close = engine.close
engine.close = lambda: (closed.append("smollm2-135m"), close())
"""


@pytest.mark.model
def test_models_chat_loaded_are_closed_before_the_interpreter_shuts_down() -> None:
    """A model ``chat()`` loaded by name lives in a per-process cache; left to shutdown, its
    llama.cpp objects were freed after the modules they need were gone ("Exception ignored in
    Llama.__del__ ... TypeError" after the test suite)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", CLOSED_AT_EXIT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "closed before shutdown: True" in done.stdout, done.stdout + done.stderr[-2000:]
    assert "Exception ignored" not in done.stderr
