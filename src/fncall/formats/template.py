"""Prompt rendering with the model's own chat template, shared by inference and training.

``render_prompt`` is a pure function of (template, messages, tools, format): training
(``render_training_example``) and inference call the same code, so what a model is taught is
exactly what it is later asked.

Tools reach the prompt one of two ways. When the template takes ``tools`` *and* its built-in
call syntax is the chosen format (Qwen2.5's template with ``hermes``), the template renders them
as it was trained to. Otherwise (SmolLM2's template ignores tools; Qwen2.5 with the ``json``
format, which is what that model actually emits) the format's own instructions go into the
system message, so the prompt never asks for a syntax the grammar would forbid.

Everything that is data (message contents, call arguments, tools) passes through
``neutralize_control_text`` before the template sees it: the engines tokenize the prompt with
special-token parsing, so a tool result holding ``<|im_end|>`` would otherwise end its turn for
real. The template's own markers, ``bos_token`` and ``eos_token`` are the only control tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fncall.errors import UserError
from fncall.formats.base import ToolCallFormat
from fncall.formats.registry import get_format, registered_formats
from fncall.types import Message, Tool, as_messages

# Used when a model ships no template of its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# A ``<|...|>`` marker (ChatML's ``<|im_end|>``, Llama 3's ``<|eot_id|>``, Phi's ``<|end|>``): no
# tokenizer has one with whitespace or ``|`` inside. The body also excludes ``<``, so the scan from
# one ``<|`` stops at the next ``<``: scans never overlap and one pass is linear with no length
# bound, and in ``<|a<|im_end|>`` the inner marker is the one found. DeepSeek writes the same
# shape with full-width bars (``<｜end▁of▁sentence｜>``). Then the special tokens of other shapes:
# the tags Qwen2.5 and Hermes templates wrap calls and results in (added tokens of Qwen's
# vocabulary: a result holding ``</tool_response>`` closed its own block), SentencePiece's
# ``<s>`` family, Gemma's turns, reasoning tags, and Mistral's bracketed controls.
_CONTROL_MARKER = re.compile(
    r"<(?=\|[^\s|<]*\|>)"
    r"|<(?=\uff5c[^\s\uff5c<]*\uff5c>)"
    r"|<(?=/?(?:tool_call|tool_response|tools|s|unk|pad|bos|eos|start_of_turn|end_of_turn"
    r"|think)>)"
    r"|\[(?=/?(?:INST|TOOL_CALLS|AVAILABLE_TOOLS|TOOL_RESULTS|SYSTEM_PROMPT)\])"
)
# U+200B ZERO WIDTH SPACE: invisible to a reader, but ``<\u200b|im_end|>`` is no added token.
_ZWSP = "\u200b"


def neutralize_control_text(text: str) -> str:
    """``text`` with every control-token marker broken by a zero-width space after its first
    character (``<|im_end|>``, ``</tool_response>``, ``<start_of_turn>``, ``[INST]``: see
    ``_CONTROL_MARKER``), so a tokenizer that parses special tokens reads it as plain text. Text
    without such a marker is returned unchanged; applying it twice changes nothing more.

    A model whose special tokens have yet another shape is not covered: its engine sees them."""
    if "<" not in text and "[" not in text:
        return text
    return _CONTROL_MARKER.sub(lambda match: match.group() + _ZWSP, text)


def _neutralize_json(value: Any) -> Any:
    """A JSON-like value (tool schema, call arguments) with every string and key neutralized."""
    if isinstance(value, str):
        return neutralize_control_text(value)
    if isinstance(value, Mapping):
        return {
            neutralize_control_text(k) if isinstance(k, str) else k: _neutralize_json(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_neutralize_json(item) for item in value]
    return value


# Closes the user turn that carries function results when the format (not the template) writes
# the tool conversation. Measured on Qwen2.5-Coder-0.5B: without it the model repeats the call.
TOOL_RESULTS_FOLLOW_UP = "Answer the question in plain text using these function results."


@dataclass(frozen=True)
class TemplateFeatures:
    """What a chat template can do with tools, read from its source."""

    takes_tools: bool  # references the ``tools`` variable
    renders_tool_calls: bool  # renders ``message.tool_calls`` itself
    knows_tool_role: bool  # has a branch for ``role == "tool"``
    native_syntax: str | None  # the format whose template marker it holds ("hermes"), if any


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False, **_: Any) -> str:
    # Templates are written against Hugging Face's tojson: no HTML escaping, non-ASCII kept.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)


def _raise_exception(message: str) -> None:
    raise jinja2.TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=16)
def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


@lru_cache(maxsize=16)
def _compile(chat_template: str) -> jinja2.Template:
    try:
        return _environment().from_string(chat_template)
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(
            f"the chat template does not parse (line {exc.lineno}): {exc.message}"
        ) from None


def template_features(chat_template: str | None) -> TemplateFeatures:
    """Inspect a template (``None`` means the ChatML fallback). Its native syntax is the first
    registered format (built-ins first) one of whose ``template_markers`` the source holds;
    asked each time, so a format registered later is recognised too."""
    source = chat_template or CHATML_TEMPLATE
    variables = _template_variables(source)
    native = next(
        (
            fmt.name
            for fmt in registered_formats()
            if any(marker in source for marker in fmt.template_markers)
        ),
        None,
    )
    return TemplateFeatures(
        takes_tools="tools" in variables,
        renders_tool_calls="tool_calls" in source,
        knows_tool_role="'tool'" in source or '"tool"' in source,
        native_syntax=native,
    )


@lru_cache(maxsize=16)
def _template_variables(source: str) -> frozenset[str]:
    try:
        return frozenset(meta.find_undeclared_variables(_environment().parse(source)))
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(
            f"the chat template does not parse (line {exc.lineno}): {exc.message}"
        ) from None


def uses_template_tools(chat_template: str | None, fmt: str | ToolCallFormat) -> bool:
    """True when the template itself renders tools and calls in the format's own syntax."""
    features = template_features(chat_template)
    return features.takes_tools and features.native_syntax == get_format(fmt).name


def _tool_response(content: str) -> str:
    return f"<tool_response>\n{content}\n</tool_response>"


def _template_messages(
    messages: Sequence[Message],
    tools: Sequence[Tool],
    fmt: ToolCallFormat,
    features: TemplateFeatures,
    native: bool,
) -> list[dict[str, Any]]:
    """Messages as the dicts templates expect; calls and results in the chosen syntax. Every
    piece of data in them is neutralized (``neutralize_control_text``); the format's rendered
    calls and tool instructions are too, since no format's own text holds a ``<|...|>`` marker."""
    out: list[dict[str, Any]] = []
    for message in messages:
        content = neutralize_control_text(message.content or "")
        if message.role == "assistant" and message.tool_calls:
            if native and features.renders_tool_calls:
                # Arguments as an object: templates apply ``tojson`` themselves, and a JSON
                # string here would be encoded twice.
                calls = [
                    {
                        "id": neutralize_control_text(call.id),
                        "type": "function",
                        "function": {
                            "name": neutralize_control_text(call.name),
                            "arguments": _neutralize_json(dict(call.arguments)),
                        },
                    }
                    for call in message.tool_calls
                ]
                out.append({"role": "assistant", "content": content, "tool_calls": calls})
            else:
                rendered = neutralize_control_text(fmt.render_calls(message.tool_calls))
                text = f"{content.strip()}\n{rendered}" if content.strip() else rendered
                out.append({"role": "assistant", "content": text})
        elif message.role == "tool" and not (native and features.knows_tool_role):
            # Results as a user turn (consecutive results merge) that asks for the answer: with a
            # bare <tool_response>, Qwen2.5-Coder repeats its call instead of answering.
            response = _tool_response(content)
            if out and out[-1].get("_tool_results"):
                out[-1]["content"] += "\n" + response
            else:
                out.append({"role": "user", "content": response, "_tool_results": True})
        else:
            entry: dict[str, Any] = {"role": message.role, "content": content}
            if message.role == "tool":
                entry["tool_call_id"] = message.tool_call_id and neutralize_control_text(
                    message.tool_call_id
                )
                entry["name"] = message.name and neutralize_control_text(message.name)
            out.append(entry)
    for entry in out:
        if entry.pop("_tool_results", False):
            entry["content"] += "\n" + TOOL_RESULTS_FOLLOW_UP
    if tools and not native:
        instructions = neutralize_control_text(fmt.render_tools(tools))
        if out and out[0]["role"] == "system" and out[0]["content"]:
            out[0] = {**out[0], "content": f"{out[0]['content']}\n\n{instructions}"}
        elif out and out[0]["role"] == "system":
            out[0] = {**out[0], "content": instructions}
        else:
            out.insert(0, {"role": "system", "content": instructions})
    return out


def render_prompt(
    chat_template: str | None,
    messages: str | Sequence[Message | Mapping[str, Any]],
    tools: Sequence[Tool] = (),
    *,
    format: str | ToolCallFormat,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """The prompt text for ``messages`` and ``tools`` under ``chat_template`` (None: ChatML).

    Pure: the same inputs always give the same text (unless a template reads the clock).
    """
    fmt = get_format(format)
    template_source = chat_template or CHATML_TEMPLATE
    features = template_features(template_source)
    tools = list(tools)
    native = bool(tools) and features.takes_tools and features.native_syntax == fmt.name
    dicts = _template_messages(as_messages(messages), tools, fmt, features, native)
    try:
        return _compile(template_source).render(
            messages=dicts,
            tools=[_neutralize_json(tool.to_openai()) for tool in tools] if native else None,
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token,
            eos_token=eos_token,
        )
    except jinja2.TemplateError as exc:
        raise UserError(f"the chat template failed to render these messages: {exc}") from None
    except TypeError as exc:
        raise UserError(f"the chat template failed to render these messages ({exc})") from None


def render_training_example(
    chat_template: str | None,
    messages: str | Sequence[Message | Mapping[str, Any]],
    tools: Sequence[Tool] = (),
    *,
    format: str | ToolCallFormat,
    bos_token: str = "",
    eos_token: str = "",
) -> tuple[str, str]:
    """``(prompt, target)`` for the last assistant turn of ``messages``.

    ``prompt`` is exactly what inference renders before that turn (with the generation prompt);
    ``target`` is the turn as the template writes it, up to and including its end-of-turn
    marker. Messages after the last assistant turn are ignored.
    """
    msgs = as_messages(messages)
    last = max((i for i, m in enumerate(msgs) if m.role == "assistant"), default=None)
    if last is None:
        raise UserError("a training example needs at least one assistant message (the target)")
    kwargs: dict[str, Any] = {"format": format, "bos_token": bos_token, "eos_token": eos_token}
    prompt = render_prompt(chat_template, msgs[:last], tools, add_generation_prompt=True, **kwargs)
    full = render_prompt(
        chat_template, msgs[: last + 1], tools, add_generation_prompt=False, **kwargs
    )
    if not full.startswith(prompt):
        raise UserError(
            "this chat template renders the conversation differently with and without the "
            "generation prompt, so the assistant turn cannot be cut out as a target"
        )
    return prompt, full[len(prompt) :].rstrip("\n")
