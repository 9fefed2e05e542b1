"""render_prompt / render_training_example with the real templates from the models' GGUF files.

tests/fixtures/templates/*.jinja are the ``tokenizer.chat_template`` strings of the embedded
models, copied verbatim (``python scripts/record_fixtures.py --templates`` rewrites them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import function_tool
from fncall.errors import UserError
from fncall.formats import get_format, render_prompt, render_training_example
from fncall.formats.template import (
    TOOL_RESULTS_FOLLOW_UP,
    template_features,
    uses_template_tools,
)
from fncall.types import Message, ToolCall

TEMPLATES = Path(__file__).parent / "fixtures" / "templates"
QWEN = (TEMPLATES / "qwen2.5-coder-0.5b.jinja").read_text()
SMOL = (TEMPLATES / "smollm2-135m.jinja").read_text()

WEATHER = function_tool(
    "get_weather", description="Météo actuelle d'une ville", city={"type": "string"}
)
CALL = ToolCall(id="call_1", name="get_weather", arguments={"city": "Zürich"})
HISTORY = [
    Message(role="user", content="Weather in Zürich and Oslo?"),
    Message(
        role="assistant",
        tool_calls=(CALL, ToolCall(id="call_2", name="get_weather", arguments={"city": "Oslo"})),
    ),
    Message(role="tool", content='{"temp_c": 12}', tool_call_id="call_1", name="get_weather"),
    Message(role="tool", content='{"temp_c": 4}', tool_call_id="call_2", name="get_weather"),
]


def test_features_of_the_real_templates():
    qwen, smol = template_features(QWEN), template_features(SMOL)
    assert (qwen.takes_tools, qwen.renders_tool_calls, qwen.knows_tool_role) == (True, True, True)
    assert qwen.native_syntax == "hermes"
    assert (smol.takes_tools, smol.renders_tool_calls, smol.knows_tool_role) == (
        False,
        False,
        False,
    )
    assert smol.native_syntax is None
    assert uses_template_tools(QWEN, "hermes") and not uses_template_tools(QWEN, "json")
    assert not uses_template_tools(SMOL, "hermes")


def test_qwen_with_hermes_uses_its_own_tool_prompt():
    prompt = render_prompt(QWEN, "Weather in Zürich?", [WEATHER], format="hermes")
    assert prompt.startswith(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
        "\n\n# Tools\n"
    )
    # tojson as Hugging Face writes it: non-ASCII kept, no HTML escaping
    assert (
        '{"type": "function", "function": {"name": "get_weather", "description": '
        '"Météo actuelle d\'une ville"' in prompt
    )
    assert prompt.endswith(
        "<|im_start|>user\nWeather in Zürich?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_qwen_with_json_puts_the_json_instructions_in_the_system_message():
    prompt = render_prompt(
        QWEN,
        [Message(role="system", content="Be brief."), Message(role="user", content="Hi")],
        [WEATHER],
        format="json",
    )
    instructions = get_format("json").render_tools([WEATHER])
    assert prompt.startswith(f"<|im_start|>system\nBe brief.\n\n{instructions}<|im_end|>\n")
    assert "<tool_call>" not in prompt and "<tools>" not in prompt


def test_qwen_hermes_history_uses_the_template_tool_calls_with_object_arguments():
    prompt = render_prompt(QWEN, HISTORY, [WEATHER], format="hermes")
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": '
        '"Zürich"}}\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": '
        '"Oslo"}}\n</tool_call><|im_end|>\n'
    ) in prompt
    assert (
        '<|im_start|>user\n<tool_response>\n{"temp_c": 12}\n</tool_response>\n'
        '<tool_response>\n{"temp_c": 4}\n</tool_response><|im_end|>\n<|im_start|>assistant\n'
    ) in prompt
    assert '\\"city' not in prompt  # arguments were not encoded twice


def test_qwen_json_history_writes_calls_in_json_and_asks_for_the_answer():
    prompt = render_prompt(QWEN, HISTORY, [WEATHER], format="json")
    calls = get_format("json").render_calls(HISTORY[1].tool_calls)
    assert f"<|im_start|>assistant\n{calls}<|im_end|>\n" in prompt
    assert prompt.endswith(
        '<|im_start|>user\n<tool_response>\n{"temp_c": 12}\n</tool_response>\n'
        '<tool_response>\n{"temp_c": 4}\n</tool_response>\n'
        f"{TOOL_RESULTS_FOLLOW_UP}<|im_end|>\n<|im_start|>assistant\n"
    )


def test_smollm2_gets_the_format_instructions_and_results_as_a_user_turn():
    prompt = render_prompt(SMOL, HISTORY, [WEATHER], format="json")
    instructions = get_format("json").render_tools([WEATHER])
    assert prompt.startswith(f"<|im_start|>system\n{instructions}<|im_end|>\n")
    assert "You are a helpful AI assistant named SmolLM" not in prompt
    assert (
        '<|im_start|>user\n<tool_response>\n{"temp_c": 12}\n</tool_response>\n'
        '<tool_response>\n{"temp_c": 4}\n</tool_response>\n'
        f"{TOOL_RESULTS_FOLLOW_UP}<|im_end|>\n"
    ) in prompt
    assert "<|im_start|>tool" not in prompt


def test_no_tools_and_no_template():
    assert render_prompt(SMOL, "Hi", format="json") == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
        "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render_prompt(None, "Hi", format="json") == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render_prompt(None, "Hi", format="json", add_generation_prompt=False) == (
        "<|im_start|>user\nHi<|im_end|>\n"
    )


def test_rendering_is_pure():
    history = list(HISTORY)
    first = render_prompt(QWEN, history, [WEATHER], format="hermes")
    assert render_prompt(QWEN, history, [WEATHER], format="hermes") == first
    assert history == HISTORY


@pytest.mark.parametrize(
    ("template", "fmt", "expected_target"),
    [
        (QWEN, "json", '[{"name": "get_weather", "arguments": {"city": "Zürich"}}]<|im_end|>'),
        (
            QWEN,
            "hermes",
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich"}}\n</tool_call>'
            "<|im_end|>",
        ),
        (SMOL, "pythonic", '[get_weather(city="Zürich")]<|im_end|>'),
    ],
)
def test_training_example_matches_inference(template, fmt, expected_target):
    messages = [
        Message(role="user", content="Weather in Zürich?"),
        Message(role="assistant", tool_calls=(CALL,)),
    ]
    prompt, target = render_training_example(template, messages, [WEATHER], format=fmt)
    assert prompt == render_prompt(template, messages[:1], [WEATHER], format=fmt)
    assert target == expected_target


def test_training_example_of_a_text_answer_after_results():
    messages = [*HISTORY, Message(role="assistant", content="12 °C in Zürich, 4 °C in Oslo.")]
    prompt, target = render_training_example(QWEN, messages, [WEATHER], format="json")
    assert prompt.endswith(f"{TOOL_RESULTS_FOLLOW_UP}<|im_end|>\n<|im_start|>assistant\n")
    assert target == "12 °C in Zürich, 4 °C in Oslo.<|im_end|>"


def test_training_example_needs_an_assistant_turn():
    with pytest.raises(UserError, match="at least one assistant message"):
        render_training_example(QWEN, "Hi", [WEATHER], format="json")


def test_template_errors_are_user_errors():
    with pytest.raises(UserError, match="does not parse"):
        render_prompt("{% for m in messages %}", "Hi", format="json")
    strict = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}"
    with pytest.raises(UserError, match="user first"):
        render_prompt(strict, [Message(role="assistant", content="x")], format="json")
    sneaky = "{{ messages.__class__.__mro__ }}"
    with pytest.raises(UserError):  # the sandbox refuses attribute games
        render_prompt(sneaky, "Hi", format="json")
