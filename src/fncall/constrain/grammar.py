"""Tool set + tool_choice + syntax -> one Lark grammar (llguidance dialect) as text.

Each syntax is the exact text the matching ``fncall.formats`` renderer writes:

- ``json``: ``[{"name": "f", "arguments": {...}}, ...]`` (or one bare call object), optionally
  inside a Markdown fence ``` ```json\\n...\\n``` ``` (the default Qwen model fences its
  JSON; admitting the fence keeps those calls constrained rather than free text);
- ``hermes``: ``<tool_call>\\n{"name": "f", "arguments": {...}}\\n</tool_call>`` blocks joined
  by ``\\n``;
- ``pythonic``: ``[f(a="x", b=1), g()]`` with Python literals;
- ``llama3``: ``{"name": "f", "parameters": {...}}`` objects joined by ``"; "``.

Spacing is fixed and is ``json.dumps``'s (``", "`` and ``": "``): one canonical text per call
means the grammar forces the punctuation (forced tokens cost no model step) and the model
cannot loop on whitespace. Object properties come in schema order: linear grammar size instead
of a permutation blow-up, and the prompt shows the model the schema in that same order.

Under ``auto`` the output is either free text or calls. Free text may not start with
whitespace or with the first character of the call syntax (``[``, ``{`` or a backtick for json,
``<`` for hermes, ``[`` for pythonic, ``{`` for llama3), so once the first character is chosen the
grammar knows which branch it is in: a call, once started, is fully constrained.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from fncall.constrain.pythonic import PY_TERMINALS, PythonicRules, lark_string
from fncall.constrain.schema import arguments_schema
from fncall.errors import UserError

Syntax = Literal["json", "hermes", "pythonic", "llama3"]
SYNTAXES: tuple[str, ...] = ("json", "hermes", "pythonic", "llama3")

# Layout inside JSON calls: the compact json.dumps form or the pretty-printed one models write
# for several calls ("[\n  {\n    \"name\": ..."). Forcing the compact form measurably made
# Qwen2.5 stop after the first of several parallel calls (BFCL parallel 45 % -> 30 %), so
# whitespace is free but bounded: at most WS_MAX characters per gap, so a model cannot loop
# on whitespace.
WS_MAX = 40
WS_PATTERN = f"[\\x20\\x0A\\x0D\\x09]{{1,{WS_MAX}}}"
JSON_OPTIONS: dict[str, Any] = {
    "item_separator": ",",
    "key_separator": ":",
    "whitespace_flexible": True,
    "whitespace_pattern": WS_PATTERN,
    "lenient": True,
}

# The characters free text may not start with, per syntax: whitespace and the first character
# of a call. A single-character class keeps the first mask cheap (a negated multi-character
# prefix such as ~/<tool_call>.*/ costs ~10 ms over a 151k vocabulary).
CALL_START_CHARS = {"json": "[`{", "hermes": "<", "pythonic": "[", "llama3": "{"}
_CALL_START = {syntax: re.escape(chars) for syntax, chars in CALL_START_CHARS.items()}


def took_call_branch(syntax: str, text: str) -> bool:
    """Whether ``text``, generated under an ``auto`` grammar of ``syntax``, is the call branch.

    The grammar decides on the first character (see ``_text_start``), so this is exact: output
    that took the text branch is plain text, even if prose later quotes something call-shaped,
    and must not be mined for calls.
    """
    if not text or text[0] not in CALL_START_CHARS[syntax]:
        return False
    if syntax == "json" and text[0] == "`":
        return text.startswith("```j")  # only a ```json fence opens a call
    return True


def took_text_branch(syntax: str, text: str) -> bool:
    """Whether ``text`` (as for ``took_call_branch``) can no longer become a call: the grammar
    has committed to free text. False while undecided (nothing yet, or a json backtick run that
    may still open a ```json fence)."""
    if not text:
        return False
    if text[0] not in CALL_START_CHARS[syntax]:
        return True
    return syntax == "json" and re.match(_JSON_TEXT_BACKTICKS, text) is not None


def build_grammar(
    tools: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    require_call: bool,
    parallel: bool,
    syntax: str,
) -> str:
    """The grammar text for ``tools`` (``(name, parameters schema)`` pairs, at least one)."""
    if syntax not in SYNTAXES:
        raise UserError(f"unknown tool-call syntax {syntax!r}; known: {', '.join(SYNTAXES)}")
    if not tools:
        raise UserError("a tool-call grammar needs at least one tool")
    lines = ["%llguidance {}"]
    lines.append("start: calls" if require_call else "start: TEXT | calls")
    lines += _calls_rules(syntax, parallel)
    lines.append("call: " + " | ".join(f"call_{i}" for i in range(len(tools))))
    for index, (name, parameters) in enumerate(tools):
        lines += _call_rules(syntax, index, name, parameters)
    if not require_call:
        lines.append(f"TEXT: /{_text_start(syntax)}(?s:.*)/")
    if syntax == "pythonic":
        lines.append(PY_TERMINALS.strip())
    else:
        lines.append(f"WS: /{WS_PATTERN}/")
    return "\n".join(lines) + "\n"


# Backtick openings that _text_start admits as free text (json): anything but a ```j fence.
_JSON_TEXT_BACKTICKS = r"`(?:[^`]|`[^`]|``[^j])"


def _text_start(syntax: str) -> str:
    """The regex free text must start with under ``auto``."""
    start = f"[^\\s{_CALL_START[syntax]}]"
    if syntax != "json":
        return start
    # A backtick only opens a call as a ```json fence: inline code and fences in other languages
    # (the model's usual way of saying "no function fits": a code block) stay free text.
    return f"(?:{start}|`[^`]|``[^`]|```[a-ik-zA-Z])"


def _calls_rules(syntax: str, parallel: bool) -> list[str]:
    if syntax == "json":
        listing = '"[" WS? call (WS? "," WS? call)* WS? "]"' if parallel else '"[" WS? call WS? "]"'
        # A bare object is one call: small models often write it instead of a one-item list.
        return [
            'calls: call_body | "```json\\n" call_body "\\n```"',
            "call_body: call_list | call",
            f"call_list: {listing}",
        ]
    if syntax == "hermes":
        block = 'block: "<tool_call>\\n" call "\\n</tool_call>"'
        return ['calls: block ("\\n" block)*' if parallel else "calls: block", block]
    if syntax == "pythonic":
        return ['calls: "[" call (", " call)* "]"' if parallel else 'calls: "[" call "]"']
    return ['calls: call (WS? ";" WS? call)*' if parallel else "calls: call"]


def _call_rules(syntax: str, index: int, name: str, parameters: Mapping[str, Any]) -> list[str]:
    schema = arguments_schema(parameters)
    if syntax == "pythonic":
        return _pythonic_call(index, name, schema)
    key = "parameters" if syntax == "llama3" else "arguments"
    quoted_name = lark_string(json.dumps(name, ensure_ascii=False))
    head = f'"{{" WS? "\\"name\\"" WS? ":" WS? {quoted_name} WS? "," WS? "\\"{key}\\"" WS? ":" WS?'
    with_options = {**schema, "x-guidance": JSON_OPTIONS}
    return [
        f'call_{index}: {head} args_{index} WS? "}}"',
        f"args_{index}: %json {json.dumps(with_options)}",
    ]


def _pythonic_call(index: int, name: str, schema: Mapping[str, Any]) -> list[str]:
    rules = PythonicRules(f"v{index}", schema)
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    pairs = [
        (rules.rule(f"{lark_string(prop + '=')} {rules.value(sub)}"), prop in required)
        for prop, sub in properties.items()
    ]
    extra = None
    additional = schema.get("additionalProperties", True)
    if additional is not False:
        value = rules.value(additional) if isinstance(additional, Mapping) else "py_any"
        extra = rules.rule(f"/[A-Za-z_][A-Za-z0-9_]*=/ {value}")
    body = rules.sequence(pairs, extra)
    call = f'call_{index}: {lark_string(name + "(")} {body or ""} ")"'
    return [call, *rules.lines]
