"""Read a function's description, parameter descriptions and choice lists from its docstring.

Google, NumPy and reST (Sphinx) styles are parsed by ``docstring-parser``, which detects the style.
On top of that we recognise the ways people write the allowed values of a parameter in prose,
so that they can become a JSON Schema ``enum``:

- ``(choices: ["celsius", "fahrenheit"])`` (the transformers convention, a JSON list)
- ``One of: celsius, fahrenheit.`` / ``one of 'celsius' or 'fahrenheit'``
- ``Choices: a, b, c``
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from typing import Any

import docstring_parser

# "(choices: [...])" with a JSON list inside: the most explicit form, tried first.
_JSON_CHOICES = re.compile(r"\(?\bchoices\s*:\s*(\[[^\]]*\])\)?", re.IGNORECASE)
# "one of: a, b or c" / "choices: a, b, c" up to the end of the sentence.
_PROSE_CHOICES = re.compile(
    r"\b(?:one\s+of|choices?)\s*(?::|-)?\s*(.+?)(?:\.\s|\.$|;|\)|$)", re.IGNORECASE | re.DOTALL
)
_SPLIT = re.compile(r"\s*(?:,|\bor\b|\band\b|/|\|)\s*")
_QUOTES = "'\"`‘’“”[]"


@dataclass(frozen=True)
class DocInfo:
    """What a docstring says about a function."""

    description: str = ""
    params: dict[str, str] = field(default_factory=dict)
    choices: dict[str, list[Any]] = field(default_factory=dict)


def parse_docstring(obj: Any) -> DocInfo:
    """Parse ``obj.__doc__`` (any style) into a description, parameter texts and choices."""
    doc = inspect.getdoc(obj)
    if not doc:
        return DocInfo()
    return parse_docstring_text(doc)


def parse_docstring_text(doc: str) -> DocInfo:
    if not doc.strip():
        return DocInfo()
    try:
        parsed = docstring_parser.parse(doc)
    except docstring_parser.ParseError:
        # A docstring that does not follow any style is still a usable description.
        return DocInfo(description=doc.strip())
    parts = [p for p in (parsed.short_description, parsed.long_description) if p]
    params: dict[str, str] = {}
    choices: dict[str, list[Any]] = {}
    for param in parsed.params:
        # Google style allows "name (type): ..."; docstring-parser keeps the name clean,
        # but "*args"/"**kwargs" keep their stars.
        name = param.arg_name.lstrip("*").split(" ")[0]
        text = " ".join((param.description or "").split())
        params[name] = text
        found = extract_choices(text)
        if found:
            choices[name] = found
    return DocInfo(description="\n\n".join(parts).strip(), params=params, choices=choices)


def extract_choices(text: str) -> list[Any] | None:
    """The allowed values a parameter description lists, or ``None`` when it lists none.

    >>> extract_choices("The unit. One of: celsius, fahrenheit.")
    ['celsius', 'fahrenheit']
    >>> extract_choices('Unit (choices: ["c", "f"])')
    ['c', 'f']
    """
    match = _JSON_CHOICES.search(text)
    if match:
        try:
            values = json.loads(match.group(1))
        except ValueError:
            values = None
        if isinstance(values, list) and len(values) >= 2:
            return values
    match = _PROSE_CHOICES.search(text)
    if not match:
        return None
    items = [item.strip().strip(_QUOTES).strip() for item in _SPLIT.split(match.group(1))]
    items = [item for item in items if item]
    # Prose such as "one of the largest cities" is not a list: require short, word-like items.
    if len(items) < 2 or any(len(item.split()) > 2 for item in items):
        return None
    return items


def strip_choices(text: str) -> str:
    """The description without a trailing ``(choices: [...])`` group (the enum carries it)."""
    return " ".join(_JSON_CHOICES.sub("", text).split())
