"""Tolerant extraction of JSON tool calls from what real models emit.

Small models wrap calls in Markdown fences, surround them with prose, write ``arguments`` as a
JSON string instead of an object, use ``"parameters"`` instead of ``"arguments"``, or return one
object where a list was asked for. Every format falls back to this reader, so a call the model
clearly meant is not lost because it chose a neighbouring syntax.

Whatever the text holds, the reader raises nothing but ``ModelOutputError``: JSON nested past
Python's recursion limit and integers past its 4,300-digit limit (``RecursionError`` and
``ValueError`` from ``json``) are unusable output like any other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from fncall.errors import ModelOutputError
from fncall.types import AssistantTurn, ToolCall


class _DuplicateKeys(dict[str, Any]):
    """A decoded object in which some key appeared more than once (``json`` keeps the last)."""

    duplicates: list[str]


def _pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) == len(keys):
        return dict(pairs)
    out = _DuplicateKeys(pairs)
    out.duplicates = sorted({key for key in keys if keys.count(key) > 1})
    return out


# Small models sometimes write {"city": "Rome", "city": "Madrid"} for two calls; plain json
# would silently keep "Madrid" only, so duplicates are remembered and refused.
_DECODER = json.JSONDecoder(object_pairs_hook=_pairs_to_dict)
# A JSON object that starts like a call: used to tell "a broken call" from "plain prose".
_CALL_START = re.compile(r'[{]\s*"(?:name|function|tool_name)"\s*:')
_EMPTY_FENCE = re.compile(r"```[A-Za-z0-9_+-]*\s*```")
_EMPTY_TAGS = re.compile(r"<tool_call>\s*</tool_call>")
_ONLY_SEPARATORS = re.compile(r"^[\s;,]*$")


def _undecodable(exc: RecursionError | ValueError, raw: str) -> ModelOutputError:
    """What ``json`` raises beyond ``JSONDecodeError``, as the model's fault."""
    if isinstance(exc, RecursionError):
        return ModelOutputError("the output nests JSON too deeply to decode", raw=raw)
    reason = str(exc).split(";")[0]  # "Exceeds the limit (4300 digits) for integer string ..."
    return ModelOutputError(
        f"the output holds a JSON value that cannot be decoded: {reason}", raw=raw
    )


def _raw_decode(text: str, start: int, raw: str) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, start)
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError) as exc:
        raise _undecodable(exc, raw) from None


def bracket_spans(text: str, *, pairs: str, quotes: str, typed: bool) -> dict[int, int]:
    """Where the span of each opening bracket that a closing one balances ends.

    ``pairs``: openers and closers, two by two (``"[]{}"``). Inside ``quotes`` (string
    delimiters, a backslash escaping the next character) brackets do not count. ``typed``: a
    closer must be its opener's (JSON); otherwise any closer closes any opener. Each opener is
    read as if the text began there, so quotes before it do not count.

    Linear in ``text``, whatever it holds: one pass from the right, each position knowing
    where a scan that reaches it outside a string drops below its depth. (Scanning from every
    opener separately was quadratic: ``x[`` repeated, or many openers whose scans all end up
    inside the same string.)
    """
    closer_of = dict(zip(pairs[0::2], pairs[1::2], strict=True))
    closers = pairs[1::2]
    string_end = {quote: _string_ends(text, quote) for quote in quotes}
    # drop[p]: reading from p outside a string, the closer where the depth first falls below
    # its level at p (None: never). An opener's span ends at the closer drop[p + 1] finds.
    drop: list[int | None] = [None] * (len(text) + 1)
    spans: dict[int, int] = {}
    for p in range(len(text) - 1, -1, -1):
        char = text[p]
        if char in closers:
            drop[p] = p
        elif char in closer_of:
            inner = drop[p + 1]
            if inner is not None and (not typed or text[inner] == closer_of[char]):
                spans[p] = inner + 1
                drop[p] = drop[inner + 1]
        elif char in string_end:
            end = string_end[char][p + 1]
            drop[p] = None if end is None else drop[end + 1]
        else:
            drop[p] = drop[p + 1]
    return spans


def _string_ends(text: str, quote: str) -> list[int | None]:
    """For each position inside a string delimited by ``quote`` (not just after a backslash),
    where the string ends (None: it never does)."""
    ends: list[int | None] = [None] * (len(text) + 2)
    for p in range(len(text) - 1, -1, -1):
        char = text[p]
        if char == "\\":
            ends[p] = ends[p + 2]
        elif char == quote:
            ends[p] = p
        else:
            ends[p] = ends[p + 1]
    return ends


def iter_json_values(text: str, *, raw: str | None = None) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(start, end, value)`` for each top-level JSON object or array found in ``text``.

    A bracket that does not start valid JSON (prose like "[1]" or a truncated call) is skipped
    and scanning resumes after it, so values nested in it can still be found. JSON too deep or
    a number too long to decode raises ``ModelOutputError`` quoting ``raw`` (the whole output;
    ``text`` by default).

    Only a bracket that a matching one closes is decoded, and only its span: a failed decode
    builds an error whose cost grows with its position in the text, which made ``{`` x 200,000
    take seconds.
    """
    raw = text if raw is None else raw
    pos = 0
    for start, end in sorted(bracket_spans(text, pairs="[]{}", quotes='"', typed=True).items()):
        if start < pos:
            continue
        try:
            value, stop = _raw_decode(text[start:end], 0, raw)
        except json.JSONDecodeError:
            continue
        if stop != end - start:
            continue
        yield start, end, value
        pos = end


def decode_arguments(name: str, arguments: Any, raw: str) -> dict[str, Any]:
    """Arguments as a dict, whether the model wrote an object, a JSON string, or nothing."""
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        try:
            arguments = _DECODER.decode(arguments)
        except json.JSONDecodeError as exc:
            raise ModelOutputError(
                f"call {name!r}: arguments is a string that is not valid JSON ({exc.msg})", raw=raw
            ) from None
        except (RecursionError, ValueError) as exc:
            raise _undecodable(exc, raw) from None
    if not isinstance(arguments, Mapping):
        raise ModelOutputError(
            f"call {name!r}: arguments must be a JSON object, got {type(arguments).__name__} "
            f"{arguments!r}",
            raw=raw,
        )
    if isinstance(arguments, _DuplicateKeys):
        raise ModelOutputError(
            f"call {name!r} repeats argument(s) {arguments.duplicates}; write one call per value",
            raw=raw,
        )
    return dict(arguments)


def call_from_object(obj: Any, raw: str) -> ToolCall | None:
    """A ``ToolCall`` from one decoded JSON value, or ``None`` when it is not shaped like a call.

    Accepted shapes: ``{"name", "arguments"}``, ``{"name", "parameters"}``, OpenAI's
    ``{"type": "function", "function": {"name", "arguments"}}`` and ``{"function": NAME,
    "arguments"}``. A call-shaped object with a bad name or arguments raises ``ModelOutputError``.
    """
    if not isinstance(obj, Mapping):
        return None
    function = obj.get("function")
    if isinstance(function, Mapping) and ("name" in function or "arguments" in function):
        obj = function
        function = None
    args_key = next((k for k in ("arguments", "parameters", "args") if k in obj), None)
    if "name" in obj:
        name = obj["name"]
    elif isinstance(function, str) or "tool_name" in obj:
        name = function if isinstance(function, str) else obj["tool_name"]
    else:
        return None
    if args_key is None and set(obj) - {"name", "id", "type"}:
        return None  # an object that merely has a "name" field, e.g. a person
    if not isinstance(name, str) or not name.strip():
        raise ModelOutputError(
            f"a tool call needs a function name (a string), got {name!r}", raw=raw
        )
    arguments = decode_arguments(name, obj.get(args_key) if args_key else None, raw)
    return ToolCall(name=name.strip(), arguments=arguments)


def calls_from_value(value: Any, raw: str) -> list[ToolCall] | None:
    """Calls from a decoded value: one call object, a list of them, or ``{"tool_calls": [...]}``.

    ``None`` when the value is not a call at all; a list that mixes calls and other things raises.
    """
    if isinstance(value, Mapping) and isinstance(value.get("tool_calls"), list):
        value = value["tool_calls"]
    if isinstance(value, list):
        if not value:
            return None
        calls = [call_from_object(item, raw) for item in value]
        found = [c for c in calls if c is not None]
        if not found:
            return None
        if len(found) != len(calls):
            bad = next(item for item, c in zip(value, calls, strict=True) if c is None)
            raise ModelOutputError(f"a list of tool calls holds a non-call entry {bad!r}", raw=raw)
        return found
    call = call_from_object(value, raw)
    return None if call is None else [call]


def clean_content(text: str) -> str | None:
    """Prose left once calls are cut out: empty fences and bare separators dropped."""
    text = _EMPTY_TAGS.sub("", _EMPTY_FENCE.sub("", text)).strip()
    if _ONLY_SEPARATORS.match(text):
        return None
    return text


def looks_like_call(text: str) -> bool:
    """True when ``text`` holds the start of a JSON call object."""
    return _CALL_START.search(text) is not None


def extract_json_calls(text: str, *, raw: str | None = None) -> AssistantTurn:
    """Find JSON tool calls anywhere in ``text`` (bare, fenced, amid prose); the rest is content.

    Raises ``ModelOutputError`` when something starts like a call but does not decode.
    """
    raw = text if raw is None else raw
    calls: list[ToolCall] = []
    kept: list[str] = []  # text outside call spans
    undecoded: list[str] = []  # text outside every decoded JSON value
    pos = 0
    for start, end, value in iter_json_values(text, raw=raw):
        found = calls_from_value(value, raw)
        undecoded.append(text[pos:start])
        if found is None:
            kept.append(text[pos:end])
        else:
            calls.extend(found)
            kept.append(text[pos:start])
        pos = end
    kept.append(text[pos:])
    undecoded.append(text[pos:])
    if looks_like_call("".join(undecoded)):
        raise ModelOutputError("the output starts a tool call that is not valid JSON", raw=raw)
    if not calls:
        return AssistantTurn(content=text.strip() or None, raw=raw)
    return AssistantTurn(content=clean_content("".join(kept)), tool_calls=tuple(calls), raw=raw)


def dump_json(value: Any) -> str:
    """JSON the way calls are written in prompts and training targets (readable, non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False)


def tools_json_lines(tools: Any, *, compact: bool = False) -> str:
    """One OpenAI tool definition per line, the layout Qwen's and Hermes' templates use.
    ``compact``: no space after ``:`` and ``,`` (Qwen's tokenizer spends a token on most of
    them: ~27 % fewer tokens for the development suite's tool lists)."""
    if not compact:
        return "\n".join(dump_json(tool.to_openai()) for tool in tools)
    return "\n".join(
        json.dumps(tool.to_openai(), ensure_ascii=False, separators=(",", ":")) for tool in tools
    )
