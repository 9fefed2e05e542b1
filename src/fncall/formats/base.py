"""The chat-format seam: how tool definitions and calls are written in a prompt, and read back.

A ``ToolCallFormat`` is one tool-call syntax (Hermes ``<tool_call>``, JSON, pythonic, Llama-3
JSON). It renders calls (for history and training targets), renders the tool instructions for
templates that do not take tools, and parses model text into an ``AssistantTurn``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from fncall.types import AssistantTurn, Tool, ToolCall


@runtime_checkable
class ToolCallFormat(Protocol):
    name: str  # also the grammar syntax name used by fncall.constrain

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        """The exact text a model should emit for these calls."""
        ...

    def render_tools(self, tools: Sequence[Tool]) -> str:
        """System-prompt instructions describing the tools and this syntax."""
        ...

    def parse(self, text: str) -> AssistantTurn:
        """Model text -> content and/or calls. Raises ``ModelOutputError`` when a call is
        attempted but unusable."""
        ...
