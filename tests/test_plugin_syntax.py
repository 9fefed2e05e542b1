"""A tool-call syntax registered from user code works everywhere a built-in does.

The syntax defined here, ``<<name|{json arguments}>>`` one call per line, is accepted by none of
the built-ins. Registered once with ``register_format``, it must drive: ``LocalChat`` constrained
(the grammar comes from the format object) and unconstrained, streaming, chat-template
detection, ``fncall eval run --format angle``, the server, and training data.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from fncall.cli import main
from fncall.constrain import accepts, build_constraint, byte_vocabulary
from fncall.constrain.base import ToolSpec
from fncall.constrain.grammar import JSON_OPTIONS, call_choice, lark_string
from fncall.engine.scripted import ScriptedEngine
from fncall.engine.testing import decode_fake_model
from fncall.errors import ModelOutputError, UserError
from fncall.formats import BaseFormat, get_format, register_format, unregister_format
from fncall.formats.auto import auto_format
from fncall.formats.template import render_training_example, template_features
from fncall.pipeline import LocalChat
from fncall.tools import validate_arguments
from fncall.types import AssistantTurn, Message, Tool, ToolCall

_CALL = re.compile(r"<<([A-Za-z_][\w.-]*)\|(.*?)>>", re.DOTALL)


class AngleFormat(BaseFormat):
    """``<<get_weather|{"city": "Paris"}>>``, one call per line."""

    name = "angle"
    call_start = "<"
    call_markers = ("<<",)
    template_markers = ("<<tool|",)

    def calls_rules(self, tools: Sequence[ToolSpec], *, parallel: bool) -> list[str]:
        lines = [
            'calls: call ("\\n" call)*' if parallel else "calls: call",
            call_choice(len(tools)),
        ]
        for index, (name, schema) in enumerate(tools):
            arguments = json.dumps({**schema, "x-guidance": JSON_OPTIONS})
            lines += [
                f'call_{index}: {lark_string("<<" + name + "|")} args_{index} ">>"',
                f"args_{index}: %json {arguments}",
            ]
        return lines

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        return "\n".join(
            f"<<{c.name}|{json.dumps(dict(c.arguments), ensure_ascii=False)}>>" for c in calls
        )

    def render_tools(self, tools: Sequence[Tool]) -> str:
        listing = "\n".join(json.dumps(tool.to_openai()) for tool in tools)
        return (
            f"Functions:\n{listing}\n\nTo call one, write <<name|{{json arguments}}>> on a line "
            "of its own. If none fits, answer in plain text."
        )

    def parse(self, text: str) -> AssistantTurn:
        calls = []
        for match in _CALL.finditer(text):
            try:
                arguments = json.loads(match.group(2))
            except json.JSONDecodeError as exc:
                raise ModelOutputError(f"<<{match.group(1)}|...>>: {exc.msg}", raw=text) from None
            calls.append(ToolCall(name=match.group(1), arguments=arguments))
        content = _CALL.sub("", text).strip() or None
        return AssistantTurn(content=content, tool_calls=tuple(calls), raw=text)


WEATHER = Tool(
    name="get_weather",
    description="Weather in a city.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 12},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
)
PARIS = '<<get_weather|{"city": "Paris", "unit": "celsius"}>>'
PARIS_CALL = ToolCall(name="get_weather", arguments={"city": "Paris", "unit": "celsius"})


def calls(turn: AssistantTurn) -> list[tuple[str, dict[str, Any]]]:
    return [(call.name, dict(call.arguments)) for call in turn.tool_calls]


PARIS_CALLS = calls(AssistantTurn(tool_calls=(PARIS_CALL,)))


@pytest.fixture(autouse=True)
def angle() -> Iterator[AngleFormat]:
    fmt = register_format(AngleFormat())
    assert isinstance(fmt, AngleFormat)
    try:
        yield fmt
    finally:
        unregister_format("angle")


def test_its_grammar_admits_what_it_renders_and_nothing_else(angle: AngleFormat) -> None:
    constraint = build_constraint([WEATHER], tool_choice="auto", syntax=angle)
    assert constraint is not None and constraint.syntax is angle
    assert accepts(constraint, angle.render_calls([PARIS_CALL, PARIS_CALL]))
    assert accepts(constraint, "No function fits.")
    assert not accepts(constraint, '<<get_weather|{"city": "Paris"}>>')  # unit is required
    assert angle.took_text_branch(get_format("json").render_calls([PARIS_CALL]))  # text here
    required = build_constraint([WEATHER], tool_choice="required", syntax=angle)
    assert required is not None and not accepts(required, "No function fits.")
    assert not accepts(required, get_format("json").render_calls([PARIS_CALL]))
    single = build_constraint([WEATHER], parallel_tool_calls=False, syntax=angle)
    assert single is not None and not accepts(single, angle.render_calls([PARIS_CALL] * 2))
    # one grammar cache, keyed by the syntax too: a json grammar of the same tools is another
    assert constraint is build_constraint([WEATHER], tool_choice="auto", syntax=angle)
    assert constraint is not build_constraint(
        [WEATHER], tool_choice="auto", syntax=get_format("json")
    )


def test_the_decode_loop_under_its_grammar_writes_a_valid_call(angle: AngleFormat) -> None:
    constraint = build_constraint(
        [WEATHER], tool_choice="required", parallel_tool_calls=False, syntax=angle
    )
    assert constraint is not None
    rng = np.random.default_rng(0)
    text, _, _ = decode_fake_model(
        constraint,
        lambda _: rng.normal(size=len(byte_vocabulary()[0])).astype(np.float32),
        max_tokens=200,
    )
    (call,) = angle.parse(text).tool_calls
    assert call.name == "get_weather"
    validate_arguments(WEATHER, dict(call.arguments))


def test_local_chat_constrained_and_unconstrained(angle: AngleFormat) -> None:
    engine = ScriptedEngine([PARIS, "It is sunny.", "<<get_weather|{oops>>"])
    model = LocalChat(engine, format="angle")
    assert model.format is angle
    turn = model.complete("Weather in Paris?", [WEATHER])
    assert calls(turn) == PARIS_CALLS and turn.finish_reason == "tool_calls"
    assert engine.requests[0].constraint.syntax is angle
    assert "<<name|{json arguments}>>" in engine.requests[0].prompt  # its own instructions
    assert model.complete("Hi", [WEATHER]).content == "It is sunny."
    with pytest.raises(UserError, match="violates the constraint"):
        model.complete("Weather?", [WEATHER])  # the scripted text breaks the grammar

    loose = LocalChat(ScriptedEngine(["Sure.\n" + PARIS, "<<get_weather|{oops>>"]), format=angle)
    loose.constrained = False
    turn = loose.complete("Weather in Paris?", [WEATHER])
    assert calls(turn) == PARIS_CALLS and turn.content == "Sure."
    with pytest.raises(ModelOutputError, match="get_weather"):
        loose.complete("Weather?", [WEATHER])


def test_streaming_stops_content_at_its_call_marker() -> None:
    model = LocalChat(
        ScriptedEngine(["Let me check.\n" + PARIS]), format="angle", constrained=False
    )
    deltas = list(model.stream("Weather in Paris?", [WEATHER]))
    content = "".join(d.content or "" for d in deltas)
    assert content.strip() == "Let me check."
    assert deltas[-1].finish_reason == "tool_calls"
    assert [d.name for d in deltas if d.name] == ["get_weather"]


def test_a_tiny_random_model_constrained_by_it_calls_validly() -> None:
    pytest.importorskip("transformers")
    from fncall.engine.transformers import TransformersEngine
    from fncall.train.tiny import tiny_model_and_tokenizer

    model, tokenizer = tiny_model_and_tokenizer(seed=0)
    engine = TransformersEngine(model, tokenizer=tokenizer, device="cpu")
    chat = LocalChat(engine, format="angle", max_tokens=96, temperature=1.0)
    turn = chat.complete(
        "Weather in Paris?", [WEATHER], tool_choice="required", parallel_tool_calls=False, seed=3
    )
    (call,) = turn.tool_calls
    assert call.name == "get_weather" and turn.raw.startswith("<<get_weather|")
    validate_arguments(WEATHER, dict(call.arguments))


def test_a_chat_template_can_be_recognised_as_teaching_it() -> None:
    template = (
        "{% if tools %}Call with <<tool|args>>: {{ tools | tojson }}{% endif %}"
        "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    )
    assert template_features(template).native_syntax == "angle"
    assert auto_format("some-new-model", template) == "angle"


def test_eval_run_with_format_angle(capsys, tmp_path: Path, monkeypatch) -> None:
    import fncall.engine
    from test_eval_data import write_bfcl_folder

    engines: list[ScriptedEngine] = []

    def load_engine(name: str, **_: Any) -> ScriptedEngine:
        engines.append(ScriptedEngine(['<<get_weather|{"city": "Paris"}>>']))
        return engines[-1]

    monkeypatch.setattr(fncall.engine, "load_engine", load_engine)
    folder = write_bfcl_folder(tmp_path / "data")
    out = tmp_path / "run"
    argv = ["eval", "run", "--model", "scripted", "--format", "angle", "--ids", "simple_python_1",
            "--categories", "simple_python", "--data-dir", str(folder), "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert "| simple_python | 1 | 1 | 100.0% |" in capsys.readouterr().out
    assert json.loads((out / "meta.json").read_text())["format"] == "angle"
    (request,) = engines[0].requests
    assert request.constraint.syntax is get_format("angle")

    unregister_format("angle")  # a format nobody registered is refused before any case runs
    assert main([*argv[:-3], "--out", str(tmp_path / "other"), "--no-progress"]) == 2
    assert "unknown tool-call format 'angle'" in capsys.readouterr().err


def test_the_server_with_format_angle_returns_the_call() -> None:
    openai = pytest.importorskip("openai")
    from fncall.serve import create_app
    from fncall.serve.testing import BackgroundServer

    engine = ScriptedEngine([PARIS, PARIS])
    app = create_app(
        LocalChat(engine, format="angle"), model_name="angle-test"
    )  # as `fncall serve`
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    tools = [WEATHER.to_openai()]
    with BackgroundServer(app) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(model="angle-test", messages=ask, tools=tools)
        (call,) = reply.choices[0].message.tool_calls
        assert (call.function.name, json.loads(call.function.arguments)) == PARIS_CALLS[0]
        assert reply.choices[0].finish_reason == "tool_calls"
        chunks = list(
            client.chat.completions.create(
                model="angle-test", messages=ask, tools=tools, stream=True
            )
        )
    streamed = [t for c in chunks if c.choices for t in (c.choices[0].delta.tool_calls or [])]
    assert [t.function.name for t in streamed if t.function and t.function.name] == ["get_weather"]
    assert all(r.constraint.syntax is get_format("angle") for r in engine.requests)


def test_training_examples_are_rendered_in_it(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from fncall.train.collate import IGNORE_INDEX, encode_example
    from fncall.train.config import config_from_dict
    from fncall.train.data import TrainingExample
    from fncall.train.tiny import tiny_tokenizer

    messages = (
        Message(role="user", content="Weather in Paris?"),
        Message(role="assistant", tool_calls=(PARIS_CALL,)),
    )
    prompt, target = render_training_example(None, messages, [WEATHER], format="angle")
    assert target.startswith(PARIS) and "<<name|{json arguments}>>" in prompt

    tokenizer = tiny_tokenizer()
    example = TrainingExample(messages=messages, tools=(WEATHER,))
    encoded = encode_example(example, tokenizer, format="angle")
    labelled = [
        t
        for t, label in zip(encoded.input_ids, encoded.labels, strict=True)
        if label != IGNORE_INDEX
    ]
    assert tokenizer.decode(labelled).startswith(PARIS)

    pytest.importorskip("accelerate")
    from fncall.train.run import run_training

    out = tmp_path / "run"  # two optimiser steps on generated data rendered in the plugin syntax
    config = config_from_dict({
        "name": "angle", "model": {"base": "tiny", "format": "angle"},
        "data": {"generate": {"examples": 8, "max_distractors": 0}, "max_seq_len": 700,
                 "validation_fraction": 0.0, "test_fraction": 0.0, "contamination_guard": False},
        "method": {"name": "lora", "rank": 2, "alpha": 4.0},
        "train": {"output_dir": str(out), "batch_size": 2, "max_steps": 2, "save_every": 100,
                  "eval_every": 100, "progress": False},
        "export": {"adapter": False, "merged": False, "model_card": False},
    })  # fmt: skip
    report = run_training(config)
    assert report["steps"] == 2 and np.isfinite(report["final_train_loss"])
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["format"] == "angle"


def _plugin_dist(root: Path, module: str, source: str) -> None:
    """A minimal installed distribution on ``root`` whose entry point names ``module``."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[fncall.formats]\nplug = {module}\n")


def _run_python(code: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(path)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_an_installed_plugin_is_found_by_every_process(tmp_path: Path) -> None:
    _plugin_dist(
        tmp_path,
        "fncall_plug_ok",
        "from fncall.formats import register_format\n"
        "from fncall.formats.json_calls import JsonFormat\n"
        "class Plugged(JsonFormat):\n    name = 'plugged'\n"
        "register_format(Plugged())\n",
    )
    done = _run_python(
        "from fncall.formats import format_names, get_format\n"
        "from fncall.constrain import build_constraint\n"
        "from fncall.types import Tool\n"
        "fmt = get_format('plugged')\n"
        "print(type(fmt).__name__, 'plugged' in format_names())\n"
        "print(build_constraint([Tool(name='f')], syntax=fmt) is not None)\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Plugged", "True", "True"]


def test_a_broken_plugin_is_a_clear_error(tmp_path: Path) -> None:
    _plugin_dist(tmp_path, "fncall_plug_broken", "raise RuntimeError('boom')\n")
    done = _run_python(
        "from fncall.errors import UserError\n"
        "from fncall.formats import get_format\n"
        "try:\n    get_format('json')\nexcept UserError as exc:\n    print(exc)\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "the tool-call format plugin 'plug' (fncall_plug_broken) failed to load: RuntimeError: boom"
    )
