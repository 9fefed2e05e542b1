"""Tool set + tool_choice + call syntax -> one Lark grammar (llguidance dialect) as text.

``build_grammar`` writes the frame every syntax shares (the start rule, the choice between free
text and calls under ``auto``, the free-text terminal) and asks the syntax object for the rules
of ``calls`` (``CallSyntax.calls_rules``). The syntaxes themselves live with their formats
(``fncall.formats.<name>``), each admitting exactly the text its renderer writes; this module
holds the kit they write with: the JSON call rules of the ``json``/``hermes``/``llama3`` family
and the bounded whitespace between JSON tokens.

Whitespace is free but bounded: at most ``WS_MAX`` (40) characters per gap between JSON tokens
(the renderers write ``json.dumps``'s compact ``", "`` / ``": "`` form, which is admitted; so is
the pretty-printed layout models use for several calls). The bound keeps a model from looping on
whitespace. Object properties come in schema order: linear grammar size instead of a
permutation blow-up, and the prompt shows the model the schema in that same order.

Under ``auto`` the output is either free text or calls. Free text may not start with whitespace
or with a character a call starts with (``CallSyntax.call_start``), so once the first character
is chosen the grammar knows which branch it is in: a call, once started, is fully constrained.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fncall.constrain.base import CallSyntax, ToolSpec
from fncall.constrain.schema import arguments_schema
from fncall.errors import UserError

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
WS_TERMINAL = f"WS: /{WS_PATTERN}/"
"""The terminal ``WS`` that ``json_call_rules`` and JSON-style ``calls`` rules use."""

# Unicode's control characters (category Cc): C0, DEL and C1.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def build_grammar(
    tools: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    require_call: bool,
    parallel: bool,
    syntax: CallSyntax,
) -> str:
    """The grammar text for ``tools`` (``(name, parameters schema)`` pairs, at least one)."""
    check_syntax(syntax)
    if not tools:
        raise UserError("a tool-call grammar needs at least one tool")
    specs = [(name, arguments_schema(parameters)) for name, parameters in tools]
    lines = ["%llguidance {}"]
    lines.append("start: calls" if require_call else "start: TEXT | calls")
    lines += syntax.calls_rules(specs, parallel=parallel)
    if not require_call:
        lines.append(f"TEXT: /{syntax.text_start}(?s:.*)/")
    lines.append(syntax.terminals.strip())
    return "\n".join(lines) + "\n"


def lark_string(text: str) -> str:
    """A Lark string literal matching ``text`` exactly (control characters escaped: the Lark
    lexer refuses some of them raw, e.g. DEL)."""
    quoted = json.dumps(text, ensure_ascii=False)
    return _CONTROL.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def check_syntax(syntax: object) -> None:
    """Raise ``UserError`` unless ``syntax`` implements ``CallSyntax`` (a name is not enough)."""
    if not isinstance(syntax, CallSyntax):
        raise UserError(
            "syntax must be a tool-call syntax object (a format: "
            f"fncall.formats.get_format(name)), got {syntax!r}"
        )


def text_start_excluding(call_start: str) -> str:
    """The regex of a first character that is neither whitespace nor one of ``call_start``.

    A single character class keeps the first mask cheap (a negated multi-character prefix such
    as ~/<tool_call>.*/ costs ~10 ms over a 151k vocabulary)."""
    return f"[^\\s{re.escape(call_start)}]"


def starts_with_any(text: str, characters: str) -> bool:
    """Whether ``text`` is non-empty and starts with one of ``characters``."""
    return bool(text) and text[0] in characters


def call_choice(count: int) -> str:
    """The rule ``call``: one of the rules ``call_0`` ... ``call_{count-1}``."""
    return "call: " + " | ".join(f"call_{i}" for i in range(count))


def json_call_rules(tools: Sequence[ToolSpec], *, arguments_key: str = "arguments") -> list[str]:
    """The rule ``call`` and one rule per tool: ``{"name": "<tool>", "<arguments_key>": {...}}``
    with the arguments under the tool's JSON Schema and ``WS`` (``WS_TERMINAL``) between
    tokens.

    The text every call shares (up to the name, between the name and the arguments, after
    them) is one rule each, not spelled out in every tool's rule: the same language, and
    llguidance compiles 128 tools in ~0.8 of the time (``benchmarks/bench_constrain.py``)."""
    lines = [
        call_choice(len(tools)),
        'call_head: "{" WS? "\\"name\\"" WS? ":" WS?',
        f'call_sep: WS? "," WS? "\\"{arguments_key}\\"" WS? ":" WS?',
        'call_end: WS? "}"',
    ]
    for index, (name, schema) in enumerate(tools):
        quoted_name = lark_string(json.dumps(name, ensure_ascii=False))
        with_options = {**schema, "x-guidance": JSON_OPTIONS}
        lines += [
            f"call_{index}: call_head {quoted_name} call_sep args_{index} call_end",
            f"args_{index}: %json {json.dumps(with_options)}",
        ]
    return lines
