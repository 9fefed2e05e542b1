"""The chat-format seam: one object per tool-call syntax, everything that syntax means.

A ``ToolCallFormat`` is one tool-call syntax (Hermes ``<tool_call>``, JSON, pythonic, Llama-3
JSON, or a plugin's). It renders calls (for history and training targets), renders the tool
instructions for templates that do not take tools, parses model text into an
``AssistantTurn``, and, as a ``fncall.constrain.CallSyntax``, writes the grammar rules of its
calls and says which characters start one. ``call_markers`` tell streaming where content may
stop being content; ``template_markers`` let a chat template be recognised as teaching it.

``BaseFormat`` gives the defaults, so a plugin writes only what differs: ``name``,
``call_start``, ``calls_rules``, ``render_calls``, ``render_tools`` and ``parse``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from fncall.constrain.base import CallSyntax
from fncall.constrain.grammar import WS_TERMINAL, starts_with_any, text_start_excluding
from fncall.types import AssistantTurn, Tool, ToolCall


@runtime_checkable
class ToolCallFormat(CallSyntax, Protocol):
    name: str  # the name ``get_format`` and ``--format`` accept

    @property
    def call_markers(self) -> tuple[str, ...]:
        """Text that may begin a call: streamed content stops at the first one."""
        ...

    @property
    def template_markers(self) -> tuple[str, ...]:
        """Text whose presence in a chat template shows it teaches this syntax (may be empty)."""
        ...

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        """The exact text a model should emit for these calls (what the grammar admits)."""
        ...

    def render_tools(self, tools: Sequence[Tool]) -> str:
        """System-prompt instructions describing the tools and this syntax."""
        ...

    def parse(self, text: str) -> AssistantTurn:
        """Model text -> content and/or calls. Raises ``ModelOutputError`` when a call is
        attempted but unusable."""
        ...


class BaseFormat:
    """Defaults for a ``ToolCallFormat``, derived from ``call_start``.

    Strings inside a call are quoted with ``"`` and JSON tokens are separated by bounded
    whitespace (the ``WS`` terminal of ``fncall.constrain.grammar``); free text is anything that
    does not start with whitespace or a call-start character; streaming stops at a call-start
    character; no chat template is recognised as teaching the syntax.
    """

    name: str
    call_start: str
    string_quotes: str = '"'
    # Whether several calls are one bracketed list ("[a, b]"), whose length
    # fncall.constrain.call_count can decide.
    call_list: bool = False
    terminals: str = WS_TERMINAL
    template_markers: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    @property
    def call_markers(self) -> tuple[str, ...]:
        return tuple(self.call_start)

    @property
    def text_start(self) -> str:
        return text_start_excluding(self.call_start)

    def took_call_branch(self, text: str) -> bool:
        return starts_with_any(text, self.call_start)

    def took_text_branch(self, text: str) -> bool:
        return bool(text) and not starts_with_any(text, self.call_start)
