"""The ``hermes`` format: each call in ``<tool_call>`` tags (Hermes, Qwen2.5's own template).

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

A model that ignores the tags and answers with bare or fenced JSON is still understood (the
default Qwen2.5-Coder does exactly that), as is a last tag left open when generation stopped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fncall.constrain.base import ToolSpec
from fncall.constrain.grammar import json_call_rules
from fncall.errors import ModelOutputError
from fncall.formats._scan import (
    calls_from_value,
    clean_content,
    dump_json,
    extract_json_calls,
    iter_json_values,
    tools_json_lines,
)
from fncall.formats.base import BaseFormat
from fncall.formats.registry import register_format
from fncall.types import AssistantTurn, Tool, ToolCall

_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)


class HermesFormat(BaseFormat):
    """``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`` per call; several
    blocks are joined by a newline."""

    name = "hermes"
    call_start = "<"
    call_markers = ("<tool_call>", "```", "{", "[")
    template_markers = ("<tool_call>",)

    def calls_rules(self, tools: Sequence[ToolSpec], *, parallel: bool) -> list[str]:
        block = 'block: "<tool_call>\\n" call "\\n</tool_call>"'
        calls = 'calls: block ("\\n" block)*' if parallel else "calls: block"
        return [calls, block, *json_call_rules(tools)]

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        bodies = (dump_json({"name": c.name, "arguments": dict(c.arguments)}) for c in calls)
        return "\n".join(f"<tool_call>\n{body}\n</tool_call>" for body in bodies)

    def render_tools(self, tools: Sequence[Tool]) -> str:
        return (
            "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n"
            f"<tools>\n{tools_json_lines(tools)}\n</tools>\n\n"
            "For each function call, return a json object with function name and arguments "
            "within <tool_call></tool_call> XML tags:\n"
            '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
            "</tool_call>\n"
            "If no function fits the request, answer in plain text without calling a function."
        )

    def parse(self, text: str) -> AssistantTurn:
        blocks = list(_BLOCK.finditer(text))
        if not blocks:
            return extract_json_calls(text)
        calls: list[ToolCall] = []
        for block in blocks:
            body = block.group(1)
            values = list(iter_json_values(body, raw=text))
            found = [c for _, _, v in values for c in (calls_from_value(v, text) or [])]
            if not found:
                raise ModelOutputError(
                    f"a <tool_call> block holds no valid call: {body.strip()[:200]!r}", raw=text
                )
            calls.extend(found)
        content = _BLOCK.sub("", text)
        return AssistantTurn(content=clean_content(content), tool_calls=tuple(calls), raw=text)


HERMES = register_format(HermesFormat())
