"""The ``json`` format: a JSON array of ``{"name", "arguments"}`` objects.

This is what the default model (Qwen2.5-Coder) emits on its own, bare or in a ```json fence, so
prompt, grammar and habit agree. Parsing also takes a single object, fences, surrounding prose,
``"parameters"`` for ``"arguments"`` and arguments written as a JSON string.

The grammar admits the list (or one bare call object: small models often write it instead of
a one-item list), optionally inside a Markdown fence ``` ```json\\n...\\n``` ```: the default
Qwen model fences its JSON, and admitting the fence keeps those calls constrained rather than
free text. A backtick opens a call only as that fence; inline code and fences in other
languages (the model's usual way of saying "no function fits": a code block) stay free text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fncall.constrain.base import ToolSpec
from fncall.constrain.grammar import json_call_rules, text_start_excluding
from fncall.formats._scan import dump_json, extract_json_calls, tools_json_lines
from fncall.formats.base import BaseFormat
from fncall.formats.registry import register_format
from fncall.types import AssistantTurn, Tool, ToolCall

# Backtick openings that are free text: anything but a ```j fence.
_TEXT_BACKTICKS = re.compile(r"`(?:[^`]|`[^`]|``[^j])")


class JsonFormat(BaseFormat):
    """``[{"name": "get_weather", "arguments": {"city": "Paris"}}]``"""

    name = "json"
    call_start = "[`{"
    call_list = True
    call_markers = ("```", "{", "[")

    def calls_rules(self, tools: Sequence[ToolSpec], *, parallel: bool) -> list[str]:
        listing = '"[" WS? call (WS? "," WS? call)* WS? "]"' if parallel else '"[" WS? call WS? "]"'
        return [
            'calls: call_body | "```json\\n" call_body "\\n```"',
            "call_body: call_list | call",
            f"call_list: {listing}",
            *json_call_rules(tools),
        ]

    @property
    def text_start(self) -> str:
        start = text_start_excluding(self.call_start)
        return f"(?:{start}|`[^`]|``[^`]|```[a-ik-zA-Z])"

    def took_call_branch(self, text: str) -> bool:
        if text.startswith("`"):
            return text.startswith("```j")  # only a ```json fence opens a call
        return super().took_call_branch(text)

    def took_text_branch(self, text: str) -> bool:
        if text.startswith("`"):
            return _TEXT_BACKTICKS.match(text) is not None
        return super().took_text_branch(text)

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        if not calls:
            return ""
        return dump_json([{"name": c.name, "arguments": dict(c.arguments)} for c in calls])

    def render_tools(self, tools: Sequence[Tool]) -> str:
        return (
            "You can call the following functions. Each is described by a JSON Schema:\n"
            f"{tools_json_lines(tools)}\n\n"
            "To call functions, reply with only a JSON array of calls and nothing else:\n"
            '[{"name": "<function name>", "arguments": {"<parameter>": <value>, ...}}]\n'
            "Put one object in the array for every call the request needs, in order. Use only the "
            "functions and parameters listed above. If no function fits the request, answer in "
            "plain text without calling a function."
        )

    def parse(self, text: str) -> AssistantTurn:
        return extract_json_calls(text)


JSON = register_format(JsonFormat())
