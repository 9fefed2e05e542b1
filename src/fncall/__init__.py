"""fncall: LLM function calling, offline on a CPU.

The public API is re-exported here. Heavy modules (torch, transformers, llama.cpp) are never
imported at ``import fncall`` time; names that need them load on first use.
"""

from __future__ import annotations

from fncall.errors import (
    ArgumentError,
    ConfigError,
    FncallError,
    ModelOutputError,
    PermissionDenied,
    SchemaError,
    ToolError,
    UserError,
)
from fncall.types import AssistantTurn, Message, Tool, ToolCall, ToolChoice, ToolResult

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "AssistantTurn",
    "ConfigError",
    "FncallError",
    "Message",
    "ModelOutputError",
    "PermissionDenied",
    "SchemaError",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "ToolError",
    "ToolResult",
    "UserError",
    "__version__",
]
