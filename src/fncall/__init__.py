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
    RunStopped,
    SchemaError,
    ToolError,
    UserError,
)
from fncall.tools import ToolSet, load_tool_file, tool
from fncall.types import (
    AssistantTurn,
    Message,
    TokenLogprob,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)

__version__ = "0.1.0"

# name -> module: loaded on first use so that ``import fncall`` stays light.
_LAZY = {
    "chat": "fncall.execute.chat",
    "ChatResult": "fncall.execute.chat",
    "ChatModel": "fncall.engine.base",
    "ChatCapabilities": "fncall.engine.base",
    "LocalChat": "fncall.pipeline",
    "RemoteChat": "fncall.engine.remote",
    "load_engine": "fncall.engine",
    "Agent": "fncall.execute",
    "Executor": "fncall.execute",
    "Policy": "fncall.execute",
    "execute": "fncall.execute",
    "build_constraint": "fncall.constrain",
    "install_model": "fncall.models",
    "RetrievingToolSet": "fncall.tools.retrieval",
}


def __getattr__(name: str) -> object:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'fncall' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


__all__ = [  # noqa: RUF022 - grouped: eager names, then lazy ones
    "Agent",
    "ArgumentError",
    "ChatCapabilities",
    "ChatModel",
    "ChatResult",
    "Executor",
    "LocalChat",
    "Policy",
    "RemoteChat",
    "RetrievingToolSet",
    "ToolSet",
    "build_constraint",
    "chat",
    "execute",
    "install_model",
    "load_engine",
    "load_tool_file",
    "tool",
    "AssistantTurn",
    "ConfigError",
    "FncallError",
    "Message",
    "ModelOutputError",
    "PermissionDenied",
    "RunStopped",
    "SchemaError",
    "TokenLogprob",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "ToolError",
    "ToolResult",
    "UserError",
    "__version__",
]
