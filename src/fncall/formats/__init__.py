"""Tool-call formats: how tools and calls are written in a prompt and read back from a model.

A format is one object per tool-call syntax: rendering, parsing, the grammar of its calls
(``fncall.constrain.CallSyntax``), its streaming markers and chat-template markers. Each
built-in is one module that registers itself through ``register_format``, the same door a
plugin uses (a plugin subclasses ``BaseFormat``); ``get_format(name)`` looks any of them up.
"""

from __future__ import annotations

from fncall.formats.base import BaseFormat, ToolCallFormat
from fncall.formats.registry import (
    format_names,
    get_format,
    register_format,
    registered_formats,
    unregister_format,
)

# Imported for their registration side effect (built-ins use the plugin door).
from fncall.formats import hermes, json_calls, llama3, pythonic  # isort: skip
from fncall.formats.auto import auto_format  # isort: skip
from fncall.formats.template import render_prompt, render_training_example  # isort: skip

__all__ = [
    "BaseFormat",
    "ToolCallFormat",
    "auto_format",
    "format_names",
    "get_format",
    "hermes",
    "json_calls",
    "llama3",
    "pythonic",
    "register_format",
    "registered_formats",
    "render_prompt",
    "render_training_example",
    "unregister_format",
]
