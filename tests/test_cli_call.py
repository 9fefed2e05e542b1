"""``fncall call`` and ``fncall chat`` with a scripted engine in place of the real model; help."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

import fncall.engine
from fncall.cli import COMMANDS, main
from fncall.engine.scripted import ScriptedEngine
from fncall.models import DEFAULT_MODEL

PARIS = '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'


@pytest.fixture
def engine(monkeypatch):
    """The engine every command gets: load_engine is replaced, nothing real is loaded."""
    scripted = ScriptedEngine()
    loaded = []

    def fake_load_engine(name, **options):
        loaded.append(name)
        return scripted

    monkeypatch.setattr(fncall.engine, "load_engine", fake_load_engine)
    scripted.loaded = loaded
    return scripted


def test_call_prints_calls_results_and_answer(engine, capsys, tools_file):
    engine.enqueue(PARIS, "It is 18 °C and clear in Paris.")
    assert main(["call", "Weather in Paris?", "--tools", tools_file]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        'call    get_weather({"city": "Paris"})',
        'result  {"city": "Paris", "temp_c": 18, "sky": "clear"}',
        "answer  It is 18 °C and clear in Paris.",
    ]
    assert engine.loaded == [DEFAULT_MODEL]
    assert engine.requests[0].constraint is not None
    assert '"temp_c": 18' in engine.requests[1].prompt  # the result went back to the model


def test_call_json_output(engine, capsys, tools_file):
    engine.enqueue(PARIS, "Sunny.")
    assert main(["call", "Weather?", "--tools", tools_file, "--json", "--model", "x.gguf"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(c["name"], c["arguments"]) for c in doc["calls"]] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert doc["results"][0]["content"]["temp_c"] == 18 and doc["results"][0]["ok"] is True
    assert doc["results"][0]["call_id"] == doc["calls"][0]["id"]
    assert doc["answer"] == "Sunny."
    assert engine.loaded == ["x.gguf"]


def test_call_without_execution(engine, capsys, tools_file):
    engine.enqueue(PARIS)
    assert main(["call", "Weather?", "--tools", tools_file, "--no-execute"]) == 0
    assert capsys.readouterr().out == 'call    get_weather({"city": "Paris"})\n'
    assert engine.remaining == 0 and len(engine.requests) == 1


def test_call_with_no_fitting_tool(engine, capsys, tools_file):
    engine.enqueue("I can only help with weather and distances.")
    assert main(["call", "Write a poem", "--tools", tools_file]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "(no function called)",
        "answer  I can only help with weather and distances.",
    ]


def test_named_tool_choice_and_format(engine, capsys, tools_file):
    engine.enqueue("[convert_km_to_miles(km=10)]", "About 6.2 miles.")
    args = [
        "call",
        "10 km?",
        "--tools",
        tools_file,
        "--tool-choice",
        "convert_km_to_miles",
        "--format",
        "pythonic",
    ]
    assert main(args) == 0
    assert "result  6.214" in capsys.readouterr().out
    assert "get_weather" not in engine.requests[0].prompt


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--tool-choice", "get_wether"],
            "'get_wether' is neither auto, required, none nor a tool",
        ),
        (["--tools", "missing.py"], "'missing.py' does not exist"),
        (["--max-tokens", "0"], "--max-tokens must be at least 1"),
    ],
)
def test_bad_input_is_a_clear_message(engine, capsys, tools_file, args, message):
    argv = ["call", "Weather?", "--tools", tools_file, *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unusable_model_output_is_fed_back_to_the_model(engine, capsys, tools_file):
    engine.enqueue('{"name": "get_weather", "arguments": {"city": ', "Which city?")
    assert main(["call", "Weather?", "--tools", tools_file, "--no-constrained"]) == 0
    assert "answer  Which city?" in capsys.readouterr().out
    assert "not valid JSON" in engine.requests[1].prompt  # the model read why


def test_chat_streams_and_runs_calls(engine, capsys, tools_file, monkeypatch):
    engine.enqueue(PARIS, "Clear skies, 18 °C.", "Bye!")
    monkeypatch.setattr(
        "sys.stdin", io.StringIO("Weather in Paris?\n\n/reset\nThanks\n/exit\nignored\n")
    )
    assert main(["chat", "--tools", tools_file]) == 0
    out = capsys.readouterr().out
    assert 'call    get_weather({"city": "Paris"})' in out
    assert 'result  {"city": "Paris", "temp_c": 18, "sky": "clear"}' in out
    assert "model> Clear skies, 18 °C.\n" in out and "model> Bye!\n" in out
    assert "(conversation cleared)" in out
    assert "Weather in Paris" not in engine.requests[2].prompt  # /reset forgot it


def test_chat_survives_bad_model_output(engine, capsys, tools_file, monkeypatch):
    engine.enqueue('[{"name": "get_weather", "argu', "Which city?", "Hello!")
    monkeypatch.setattr("sys.stdin", io.StringIO("Weather?\nHi\n"))
    assert main(["chat", "--tools", tools_file, "--no-constrained"]) == 0
    out = capsys.readouterr().out
    assert "could not be used" in out and "model> Which city?" in out
    assert "model> Hello!" in out


def test_help_lists_every_command_without_importing_any() -> None:
    script = (
        "import sys\n"
        "from fncall.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('loaded:', sorted(m for m in sys.modules if m.startswith('fncall.cli.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    out = " ".join(done.stdout.split())
    for name, (_, help_text) in COMMANDS.items():
        assert f"{name} {help_text}" in out
    assert "loaded: []" in out


def test_a_commands_help_loads_its_arguments(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["call", "--help"])
    assert exited.value.code == 0
    assert "--tools FILE" in capsys.readouterr().out
