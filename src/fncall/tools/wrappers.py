"""Views over a tool set: filter, prefix, rename. Each wraps, never subclasses, the set it changes.

A view holds the wrapped set and recomputes its tools on every access, so it stays in step with
the inner set. Renaming replaces only the tool's ``name``: the ``function`` is the original one,
so executing a call on ``weather_get_temp`` runs ``get_temp``. ``original_name(name)`` maps a
name shown to the model back to the inner set's name (for logs and for calling the inner set).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

from fncall.errors import UserError
from fncall.tools.registry import AbstractToolSet
from fncall.types import Tool

__all__ = ["FilteredToolSet", "PrefixedToolSet", "RenamedToolSet", "WrapperToolSet"]


class WrapperToolSet(AbstractToolSet):
    """Base of the views: holds ``wrapped`` and maps outer names back to inner ones."""

    def __init__(self, wrapped: AbstractToolSet) -> None:
        if not isinstance(wrapped, AbstractToolSet):
            raise UserError(
                f"{type(self).__name__} wraps a ToolSet (or another view), got {wrapped!r}"
            )
        self.wrapped = wrapped

    def original_name(self, name: str) -> str:
        """The name this tool has in the innermost set."""
        self.get(name)  # unknown names fail here, naming the close matches
        inner = self._inner_name(name)
        if isinstance(self.wrapped, WrapperToolSet):
            return self.wrapped.original_name(inner)
        return inner

    def inner_names(self, name: str) -> tuple[str, ...]:
        """The names this tool has in each set under this view, outermost first (a permission
        rule for any of them applies to the tool, whatever view shows it)."""
        self.get(name)
        inner = self._inner_name(name)
        if isinstance(self.wrapped, WrapperToolSet):
            return (inner, *self.wrapped.inner_names(inner))
        return (inner,)

    def _inner_name(self, name: str) -> str:
        return name


class FilteredToolSet(WrapperToolSet):
    """The tools of ``wrapped`` that pass ``keep`` (a predicate, or a collection of names)."""

    def __init__(
        self, wrapped: AbstractToolSet, keep: Callable[[Tool], bool] | Iterable[str]
    ) -> None:
        super().__init__(wrapped)
        if callable(keep):
            self._keep = keep
        else:
            names = [keep] if isinstance(keep, str) else list(keep)
            unknown = [n for n in names if n not in wrapped]
            if unknown:
                raise UserError(
                    f"cannot keep unknown tool(s) {unknown}; available: {wrapped.names}"
                )
            wanted = frozenset(names)
            self._keep = lambda tool: tool.name in wanted

    def tool_map(self) -> dict[str, Tool]:
        return {name: tool for name, tool in self.wrapped.tool_map().items() if self._keep(tool)}


class PrefixedToolSet(WrapperToolSet):
    """The tools of ``wrapped`` named ``prefix + separator + name``.

    The default separator is ``_`` because OpenAI tool names allow only ``[a-zA-Z0-9_-]``.
    """

    def __init__(self, wrapped: AbstractToolSet, prefix: str, *, separator: str = "_") -> None:
        super().__init__(wrapped)
        if not isinstance(prefix, str) or not prefix:
            raise UserError(f"a tool name prefix must be a non-empty string, got {prefix!r}")
        self.prefix = prefix + separator

    def tool_map(self) -> dict[str, Tool]:
        return {
            self.prefix + name: dataclasses.replace(tool, name=self.prefix + name)
            for name, tool in self.wrapped.tool_map().items()
        }

    def _inner_name(self, name: str) -> str:
        return name.removeprefix(self.prefix)


class RenamedToolSet(WrapperToolSet):
    """The tools of ``wrapped``, with ``names`` mapping inner names to outer ones.

    Tools not in ``names`` keep their names. Two tools ending up with one name is a ``UserError``.
    """

    def __init__(self, wrapped: AbstractToolSet, names: Mapping[str, str]) -> None:
        super().__init__(wrapped)
        if not isinstance(names, Mapping):
            raise UserError(f"renamed() takes a mapping of old name -> new name, got {names!r}")
        unknown = [n for n in names if n not in wrapped]
        if unknown:
            raise UserError(f"cannot rename unknown tool(s) {unknown}; available: {wrapped.names}")
        bad = [new for new in names.values() if not isinstance(new, str) or not new]
        if bad:
            raise UserError(f"new tool names must be non-empty strings, got {bad}")
        self.names_map = dict(names)
        self.tool_map()  # fail now, not at first use, when two tools would share a name

    def tool_map(self) -> dict[str, Tool]:
        out: dict[str, Tool] = {}
        for name, tool in self.wrapped.tool_map().items():
            new = self.names_map.get(name, name)
            if new in out:
                raise UserError(
                    f"renaming gives two tools the name {new!r}; pick a name not in use"
                )
            out[new] = tool if new == name else dataclasses.replace(tool, name=new)
        return out

    def _inner_name(self, name: str) -> str:
        reverse = {new: old for old, new in self.names_map.items()}
        return reverse.get(name, name)
