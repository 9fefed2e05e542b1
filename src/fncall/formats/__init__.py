"""Tool-call formats: how tools and calls are written in a prompt and read back from a model.

Each built-in format is one module that registers itself through ``register_format``, the same
door a plugin uses; ``get_format(name)`` looks any of them up.
"""

from __future__ import annotations

from fncall.formats.base import ToolCallFormat
from fncall.formats.registry import format_names, get_format, register_format, unregister_format

# Imported for their registration side effect (built-ins use the plugin door).
from fncall.formats import hermes, json_calls, llama3, pythonic  # isort: skip
from fncall.formats.auto import auto_format  # isort: skip
from fncall.formats.template import render_prompt, render_training_example  # isort: skip

__all__ = [
    "ToolCallFormat",
    "auto_format",
    "format_names",
    "get_format",
    "hermes",
    "json_calls",
    "llama3",
    "pythonic",
    "register_format",
    "render_prompt",
    "render_training_example",
    "unregister_format",
]
