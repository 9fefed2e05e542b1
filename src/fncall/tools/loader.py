"""Load a user's function library (``my_tools.py``) as a ``ToolSet``.

What a file exposes, in order of precedence:

1. a module-level ``tools`` or ``TOOLS`` (a ``ToolSet``, or a list of tools and functions);
2. otherwise its ``@tool``-decorated functions (module-level ``Tool`` objects);
3. otherwise every public function defined in the file that has a docstring (helpers without
   one, and functions imported from elsewhere, are left out).

The commands ``fncall call``, ``serve`` and ``mcp-serve`` all load libraries through here.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from fncall.errors import FncallError, UserError
from fncall.tools.registry import AbstractToolSet, ToolSet
from fncall.tools.schema import LOADED_MODULE_PREFIX, StrictDocs, tool_from_function
from fncall.types import Tool

__all__ = ["load_tool_file", "toolset_from_module"]

HOW_TO_EXPOSE = (
    "decorate functions with @fncall.tools.tool, define a module-level `tools` list, "
    "or write public functions with docstrings"
)


def load_tool_file(path: str | Path, *, strict_docs: StrictDocs = True) -> ToolSet:
    """Import the Python file at ``path`` and collect its tools (see the module docstring).

    A missing file, a file that fails to import, or one that exposes no tools is a ``UserError``
    naming the path. ``strict_docs`` applies to plain functions turned into tools here.
    """
    file = Path(path)
    if not file.exists():
        raise UserError(f"tool file {str(file)!r} does not exist")
    if file.is_dir() or file.suffix != ".py":
        raise UserError(f"tool file {str(file)!r} must be a Python (.py) file")
    module = _import_file(file)
    try:
        toolset = toolset_from_module(module, strict_docs=strict_docs)
    except FncallError as exc:
        raise UserError(f"tool file {str(file)!r}: {exc}") from exc
    if not toolset:
        raise UserError(f"tool file {str(file)!r} exposes no tools; {HOW_TO_EXPOSE}")
    return toolset


def _import_file(file: Path) -> ModuleType:
    # A unique module name: loading two files both called tools.py must not collide.
    name = f"{LOADED_MODULE_PREFIX}{file.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise UserError(f"tool file {str(file)!r} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs so dataclasses and typing can find the module by name.
    sys.modules[name] = module
    parent = str(file.resolve().parent)
    added = parent not in sys.path
    if added:  # sibling imports (from helpers import ...) work as when the file is run
        sys.path.insert(0, parent)
    try:
        spec.loader.exec_module(module)
    except FncallError as exc:
        sys.modules.pop(name, None)
        raise UserError(f"tool file {str(file)!r}: {exc}") from exc
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise UserError(
            f"could not import tool file {str(file)!r}: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        if added and parent in sys.path:
            sys.path.remove(parent)
    return module


def toolset_from_module(module: ModuleType, *, strict_docs: StrictDocs = True) -> ToolSet:
    """The tools a module exposes, by the precedence in this module's docstring."""
    for attribute in ("tools", "TOOLS"):
        declared = getattr(module, attribute, None)
        if declared is not None and not isinstance(declared, ModuleType):
            return _declared_tools(declared, attribute, strict_docs)
    decorated = [value for value in vars(module).values() if isinstance(value, Tool)]
    if decorated:
        return ToolSet(decorated)
    functions = [
        value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and inspect.isfunction(value)
        and value.__module__ == module.__name__
        and inspect.getdoc(value)
    ]
    return ToolSet([tool_from_function(fn, strict_docs=strict_docs) for fn in functions])


def _declared_tools(declared: Any, attribute: str, strict_docs: StrictDocs) -> ToolSet:
    if isinstance(declared, ToolSet):
        return declared
    if isinstance(declared, AbstractToolSet):
        return ToolSet(declared)
    if isinstance(declared, Tool) or callable(declared) or not isinstance(declared, list | tuple):
        raise UserError(
            f"module-level `{attribute}` must be a ToolSet or a list of tools and functions, "
            f"got {type(declared).__name__}"
        )
    toolset = ToolSet(strict_docs=strict_docs)
    for index, item in enumerate(declared):
        if isinstance(item, Tool):
            toolset.add(item)
        elif callable(item):
            toolset.add(tool_from_function(item, strict_docs=strict_docs))
        else:
            raise UserError(f"`{attribute}[{index}]` must be a Tool or a function, got {item!r}")
    return toolset
