"""Tool sets: an ordered registry of tools, and the read-only interface every view shares.

``ToolSet`` owns tools. Filtering, prefixing and renaming never copy or subclass it: they are thin
views (``fncall.tools.wrappers``) that hold the set they wrap and recompute their tools from it,
so a tool added later to the inner set shows through, and every wrapped tool still calls the
original function.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, overload

from fncall.errors import UserError
from fncall.tools.schema import StrictDocs, tool_from_function
from fncall.types import Tool

if TYPE_CHECKING:
    from fncall.tools.wrappers import FilteredToolSet, PrefixedToolSet, RenamedToolSet

__all__ = ["AbstractToolSet", "ToolSet", "ToolsInput", "as_toolset"]


class AbstractToolSet(ABC):
    """What every tool set offers: ordered iteration, lookup by name and the OpenAI export."""

    @abstractmethod
    def tool_map(self) -> dict[str, Tool]:
        """The tools by name, in registration order (a fresh dict; safe to modify)."""

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tool_map().values())

    def __len__(self) -> int:
        return len(self.tool_map())

    def __contains__(self, name: object) -> bool:
        return name in self.tool_map()

    def __bool__(self) -> bool:
        return len(self) > 0

    @property
    def names(self) -> list[str]:
        return list(self.tool_map())

    @property
    def tools(self) -> list[Tool]:
        return list(self.tool_map().values())

    def get(self, name: str) -> Tool:
        """The tool called ``name``; an unknown name is a ``UserError`` naming the close matches."""
        tools = self.tool_map()
        try:
            return tools[name]
        except (KeyError, TypeError):
            raise UserError(unknown_tool_message(name, list(tools))) from None

    def to_openai(self) -> list[dict[str, Any]]:
        """The OpenAI ``tools`` list."""
        return [tool.to_openai() for tool in self]

    def filtered(self, keep: Callable[[Tool], bool] | Iterable[str]) -> FilteredToolSet:
        """A view keeping the tools for which ``keep(tool)`` is true, or whose names are listed."""
        from fncall.tools.wrappers import FilteredToolSet

        return FilteredToolSet(self, keep)

    def prefixed(self, prefix: str, *, separator: str = "_") -> PrefixedToolSet:
        """A view whose tool names are ``prefix + separator + name``."""
        from fncall.tools.wrappers import PrefixedToolSet

        return PrefixedToolSet(self, prefix, separator=separator)

    def renamed(self, names: Mapping[str, str]) -> RenamedToolSet:
        """A view renaming tools: ``names`` maps an inner name to the name shown outside."""
        from fncall.tools.wrappers import RenamedToolSet

        return RenamedToolSet(self, names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.names!r})"


def unknown_tool_message(name: object, available: list[str]) -> str:
    close = difflib.get_close_matches(str(name), available, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    shown = ", ".join(repr(n) for n in available[:50]) or "none"
    more = f" (+{len(available) - 50} more)" if len(available) > 50 else ""
    return f"unknown tool {name!r}{hint}; available: {shown}{more}"


class ToolSet(AbstractToolSet):
    """An ordered registry of tools. Names are unique; each tool may belong to a namespace.

    A namespace groups tools (``toolset.namespace("weather")`` is a view of that group) without
    changing their names: the model sees one flat list of unique names. To merge two sets whose
    names clash, add one of them ``prefixed(...)``.
    """

    def __init__(
        self,
        tools: Iterable[Tool | Callable[..., Any]] | AbstractToolSet = (),
        *,
        namespace: str | None = None,
        strict_docs: StrictDocs = True,
    ) -> None:
        self._tools: dict[str, Tool] = {}
        self._namespaces: dict[str, str | None] = {}
        self.strict_docs: StrictDocs = strict_docs
        self.add_all(tools, namespace=namespace)

    def tool_map(self) -> dict[str, Tool]:
        return dict(self._tools)

    @overload
    def add(
        self,
        tool: Tool | Callable[..., Any],
        /,
        *,
        namespace: str | None = None,
        replace: bool = False,
    ) -> Tool: ...

    @overload
    def add(
        self,
        tool: None = None,
        /,
        *,
        namespace: str | None = None,
        replace: bool = False,
    ) -> Callable[[Callable[..., Any]], Tool]: ...

    def add(
        self,
        tool: Tool | Callable[..., Any] | None = None,
        /,
        *,
        namespace: str | None = None,
        replace: bool = False,
    ) -> Tool | Callable[[Callable[..., Any]], Tool]:
        """Register a ``Tool`` or a plain function (converted with ``tool_from_function``).

        Without an argument it is a decorator: ``@toolset.add()``. A name already registered is a
        ``UserError`` unless ``replace=True``. Returns the registered tool.
        """
        if tool is None:
            return lambda fn: self.add(fn, namespace=namespace, replace=replace)
        if not isinstance(tool, Tool):
            if not callable(tool):
                raise UserError(f"ToolSet.add takes a Tool or a function, got {tool!r}")
            tool = tool_from_function(tool, strict_docs=self.strict_docs)
        if tool.name in self._tools and not replace:
            raise UserError(
                f"a tool named {tool.name!r} is already registered; rename one, pass "
                "replace=True, or add the other set with .prefixed(...)"
            )
        self._tools[tool.name] = tool
        self._namespaces[tool.name] = namespace
        return tool

    def add_all(
        self,
        tools: Iterable[Tool | Callable[..., Any]] | AbstractToolSet,
        *,
        namespace: str | None = None,
    ) -> None:
        """Register several tools (or every tool of another set) under one namespace."""
        if isinstance(tools, Tool) or (callable(tools) and not isinstance(tools, AbstractToolSet)):
            raise UserError("add_all takes a list of tools or a tool set; use add() for one tool")
        for tool in tools:
            self.add(tool, namespace=namespace)

    def remove(self, name: str) -> Tool:
        """Unregister and return the tool called ``name``."""
        tool = self.get(name)
        del self._tools[name]
        del self._namespaces[name]
        return tool

    def namespace_of(self, name: str) -> str | None:
        self.get(name)
        return self._namespaces[name]

    @property
    def namespaces(self) -> list[str]:
        """The namespaces in use, in first-registration order."""
        return list(dict.fromkeys(ns for ns in self._namespaces.values() if ns is not None))

    def namespace(self, namespace: str) -> FilteredToolSet:
        """A live view of the tools registered under ``namespace``."""
        if namespace not in self.namespaces:
            raise UserError(
                f"unknown namespace {namespace!r}; namespaces: {self.namespaces or 'none'}"
            )
        return self.filtered(lambda tool: self._namespaces.get(tool.name) == namespace)


ToolsInput = (
    AbstractToolSet | Tool | Mapping[str, Tool] | Iterable[Tool | Callable[..., Any]] | None
)
"""What every API that takes "the tools" accepts (``as_toolset`` normalises it)."""


def as_toolset(tools: ToolsInput) -> AbstractToolSet:
    """The one normalisation of "the tools" an API was given: a tool set as is; a Tool, a list
    of tools or plain functions (schemas from their hints), a mapping of name to Tool, or
    ``None`` (no tools) as a new ``ToolSet``."""
    if isinstance(tools, AbstractToolSet):
        return tools
    if tools is None:
        return ToolSet()
    if isinstance(tools, Tool):
        return ToolSet([tools])
    if isinstance(tools, Mapping):
        for name, entry in tools.items():
            if not isinstance(entry, Tool) or entry.name != name:
                raise UserError(
                    f"a mapping of tools must map each name to the Tool of that name; "
                    f"{name!r} maps to {entry!r}"
                )
        return ToolSet(tools.values())
    if isinstance(tools, str | bytes) or not isinstance(tools, Iterable):
        raise UserError(
            "tools must be a tool set, a Tool, a list of tools or functions, or a mapping of "
            f"name to Tool; got {type(tools).__name__}"
        )
    return ToolSet(tools)
