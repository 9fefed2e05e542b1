"""The ``json`` format: a JSON array of ``{"name", "arguments"}`` objects.

This is what the default model (Qwen2.5-Coder) emits on its own, bare or in a ```json fence, so
prompt, grammar and habit agree. Parsing also takes a single object, fences, surrounding prose,
``"parameters"`` for ``"arguments"`` and arguments written as a JSON string.
"""

from __future__ import annotations

from collections.abc import Sequence

from fncall.formats._scan import dump_json, extract_json_calls, tools_json_lines
from fncall.formats.registry import register_format
from fncall.types import AssistantTurn, Tool, ToolCall


class JsonFormat:
    """``[{"name": "get_weather", "arguments": {"city": "Paris"}}]``"""

    name = "json"

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
