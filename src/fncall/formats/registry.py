"""The one registry of tool-call formats; built-ins register through the same door as plugins.

from fncall.formats import register_format, get_format

register_format(MyFormat())          # a plugin (subclass fncall.formats.BaseFormat)
get_format("hermes")                 # a built-in, looked up the same way

A registered format is usable everywhere a built-in is: ``LocalChat(format=...)`` constrained
or not, ``fncall eval run --format``, the server, training data, chat-template detection.

An installed package makes its formats available to every fncall process (the command line and
the evaluation processes ``--workers`` starts included) through an entry point in the
``fncall.formats`` group naming a module that calls ``register_format`` when imported::

    [project.entry-points."fncall.formats"]
    angle = "my_package.angle_format"
"""

from __future__ import annotations

from fncall.errors import UserError
from fncall.formats.base import ToolCallFormat

_FORMATS: dict[str, ToolCallFormat] = {}
_MEMBERS = (
    "name",
    "call_start",
    "string_quotes",
    "text_start",
    "terminals",
    "call_markers",
    "template_markers",
    "calls_rules",
    "took_call_branch",
    "took_text_branch",
    "render_calls",
    "render_tools",
    "parse",
)


def register_format(fmt: ToolCallFormat, *, replace: bool = False) -> ToolCallFormat:
    """Make ``fmt`` available as ``get_format(fmt.name)``. Returns it, so it can decorate.

    Registering a second format under a taken name is an error unless ``replace=True``.
    """
    if not isinstance(fmt, ToolCallFormat):
        missing = sorted(m for m in _MEMBERS if not hasattr(fmt, m))
        raise UserError(
            f"register_format needs a ToolCallFormat (subclass fncall.formats.BaseFormat); "
            f"{type(fmt).__name__} lacks {', '.join(missing)}"
        )
    if not isinstance(fmt.name, str) or not fmt.name:
        raise UserError(f"a format's name must be a non-empty string, got {fmt.name!r}")
    if fmt.name in _FORMATS and not replace and _FORMATS[fmt.name] is not fmt:
        raise UserError(
            f"a format named {fmt.name!r} is already registered; pass replace=True to override it"
        )
    _FORMATS[fmt.name] = fmt
    return fmt


def registered_formats() -> list[ToolCallFormat]:
    """Every registered format, in registration order (built-ins first)."""
    _load_builtins()
    return list(_FORMATS.values())


def unregister_format(name: str) -> None:
    """Remove a format (tests and plugins that clean up after themselves)."""
    _FORMATS.pop(name, None)


def format_names() -> list[str]:
    """The names ``get_format`` accepts, sorted."""
    _load_builtins()
    return sorted(_FORMATS)


def get_format(name: str | ToolCallFormat) -> ToolCallFormat:
    """The registered format called ``name`` (a format object is returned unchanged)."""
    if isinstance(name, ToolCallFormat) and not isinstance(name, str):
        return name
    _load_builtins()
    try:
        return _FORMATS[name]
    except (KeyError, TypeError):
        raise UserError(
            f"unknown tool-call format {name!r}; accepted: {', '.join(sorted(_FORMATS))}"
        ) from None


ENTRY_POINT_GROUP = "fncall.formats"
_plugins_loaded = False


def _load_builtins() -> None:
    """Register the built-ins (importing the package registers them), then, once per process,
    the formats of installed plugins. A plugin that fails to import is an error naming it."""
    global _plugins_loaded
    import fncall.formats  # noqa: F401

    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as exc:
            raise UserError(
                f"the tool-call format plugin {entry.name!r} ({entry.value}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from None
