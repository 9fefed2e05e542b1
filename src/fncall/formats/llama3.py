"""The ``llama3`` format: Llama 3.x JSON calls, ``{"name": ..., "parameters": {...}}``.

Several calls are separated by ``; ``. Llama 3.1/3.2 may prefix ``<|python_tag|>``; parsing drops
it and otherwise reads calls as tolerantly as the ``json`` format.
"""

from __future__ import annotations

from collections.abc import Sequence

from fncall.constrain.base import ToolSpec
from fncall.constrain.grammar import json_call_rules
from fncall.formats._scan import dump_json, extract_json_calls, tools_json_lines
from fncall.formats.base import BaseFormat
from fncall.formats.registry import register_format
from fncall.types import AssistantTurn, Tool, ToolCall

PYTHON_TAG = "<|python_tag|>"


class Llama3Format(BaseFormat):
    """``{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": ...}``"""

    name = "llama3"
    call_start = "{"
    call_markers = (PYTHON_TAG, "```", "{", "[")
    template_markers = (PYTHON_TAG, '"parameters"')

    def calls_rules(self, tools: Sequence[ToolSpec], *, parallel: bool) -> list[str]:
        calls = 'calls: call (WS? ";" WS? call)*' if parallel else "calls: call"
        return [calls, *json_call_rules(tools, arguments_key="parameters")]

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        return "; ".join(
            dump_json({"name": c.name, "parameters": dict(c.arguments)}) for c in calls
        )

    def render_tools(self, tools: Sequence[Tool]) -> str:
        return (
            "You have access to the following functions. Each is described by a JSON Schema:\n"
            f"{tools_json_lines(tools)}\n\n"
            "To call a function, respond with only a JSON object in the format "
            '{"name": "<function name>", "parameters": {"<parameter>": <value>, ...}}. '
            'To make several calls, separate the objects with "; ". Use only the functions and '
            "parameters listed above. If no function fits the request, answer in plain text "
            "without calling a function."
        )

    def parse(self, text: str) -> AssistantTurn:
        return extract_json_calls(_without_tags(text), raw=text)


def _without_tags(text: str) -> str:
    """``text`` without the ``<|python_tag|>`` markers outside JSON strings (a string value may
    hold the marker's text, and keeps it)."""
    kept: list[str] = []
    quoted = escaped = False
    at = 0
    while at < len(text):
        if not quoted and text.startswith(PYTHON_TAG, at):
            at += len(PYTHON_TAG)
            continue
        char = text[at]
        if quoted and escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        kept.append(char)
        at += 1
    return "".join(kept)


LLAMA3 = register_format(Llama3Format())
