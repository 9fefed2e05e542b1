"""Training data: one ``TrainingExample`` per conversation, imported from a user's files.

Three input shapes are understood, detected per file (or per line):

* OpenAI JSON Lines: ``{"messages": [...], "tools": [...]}`` per line (``tools`` in the
  ``{"type": "function", "function": {...}}`` shape or bare function objects).
* ShareGPT / Hermes: ``{"conversations": [{"from": "human"|"gpt"|"system"|"tool", "value": ...}],
  "tools": ...}`` where the assistant writes
  ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``;
  tools may also sit in the system prompt between ``<tools>`` and ``</tools>``.
* BFCL: a question file (``id``, ``question``, ``function``) with its ``possible_answer/`` file
  beside it; the first acceptable value of each argument becomes the gold call, and a question
  without an answer file (irrelevance) becomes a turn that answers without calling.

Every problem names the file and line. The model learns the *last* assistant turn of each example.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fncall.errors import UserError
from fncall.types import Message, Tool, ToolCall

NO_CALL_ANSWER = "None of the available functions fits this request, so I cannot call one."

_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": None}


@dataclass(frozen=True, kw_only=True)
class TrainingExample:
    """A conversation whose final assistant message is the training target."""

    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    source: str = ""  # "file:line" or "generated:<kind>", for error messages and reports

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "tools", tuple(self.tools))
        if not self.messages or self.messages[-1].role != "assistant":
            raise UserError(f"{self.source or 'example'}: the last message must be the assistant's")

    @property
    def question(self) -> str:
        """The last user message's text (what the contamination guard compares)."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content or ""
        return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "messages": [m.to_openai() for m in self.messages],
            "tools": [t.to_openai() for t in self.tools],
        }


def tool_from_json(data: Any) -> Tool:
    """An OpenAI ``tools`` entry, a bare function object, or a BFCL function doc -> ``Tool``."""
    if not isinstance(data, Mapping):
        raise UserError(f"a tool must be an object, got {data!r:.100}")
    function = data.get("function", data) if data.get("type", "function") == "function" else data
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise UserError(f"a tool needs a string 'name', got {data!r:.100}")
    parameters = _normalise_schema(function.get("parameters") or {"type": "object"})
    parameters.setdefault("properties", {})
    return Tool(
        name=function["name"],
        description=str(function.get("description") or ""),
        parameters=parameters,
    )


def _normalise_schema(schema: Any) -> dict[str, Any]:
    """BFCL's own type names (``dict``, ``float``, ``tuple``, ``any``) -> JSON Schema."""
    if not isinstance(schema, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str) and value in _BFCL_TYPES:
            mapped = _BFCL_TYPES[value]
            if mapped is not None:
                out["type"] = mapped
        elif key == "properties" and isinstance(value, Mapping):
            out[key] = {name: _normalise_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = _normalise_schema(value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- per-line parsers


def _from_openai(record: Mapping[str, Any], source: str) -> TrainingExample:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise UserError("'messages' must be a non-empty list")
    return TrainingExample(
        messages=tuple(Message.from_openai(m) for m in messages),
        tools=tuple(tool_from_json(t) for t in record.get("tools") or ()),
        source=source,
    )


_ROLE_OF = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "tool": "tool",
    "function_response": "tool",
    "observation": "tool",
}
_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_TOOLS_BLOCK = re.compile(r"<tools>\s*(.*?)\s*</tools>", re.DOTALL)


def _parse_tools_text(text: str) -> list[Tool]:
    """Tools written as a JSON list, or as one JSON object per line (Hermes system prompts)."""
    text = text.strip()
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        items = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [tool_from_json(item) for item in items]


def _from_sharegpt(record: Mapping[str, Any], source: str) -> TrainingExample:
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise UserError("'conversations' must be a non-empty list")
    raw_tools = record.get("tools")
    tools: list[Tool] = []
    if isinstance(raw_tools, str) and raw_tools.strip():
        tools = _parse_tools_text(raw_tools)
    elif isinstance(raw_tools, list):
        tools = [tool_from_json(t) for t in raw_tools]
    messages: list[Message] = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, Mapping):
            raise UserError(f"turn {index} must be an object with 'from' and 'value'")
        role = _ROLE_OF.get(str(turn.get("from", turn.get("role", ""))))
        value = turn.get("value", turn.get("content"))
        if role is None or not isinstance(value, str):
            raise UserError(
                f"turn {index} needs 'from' (one of {', '.join(sorted(_ROLE_OF))}) and a string "
                f"'value', got {dict(turn)!r:.120}"
            )
        if role == "system" and not tools and (block := _TOOLS_BLOCK.search(value)):
            tools = _parse_tools_text(block.group(1))
            value = _TOOLS_BLOCK.sub("", value).strip()
        if role == "assistant" and "<tool_call>" in value:
            calls = []
            for body in _TOOL_CALL.findall(value):
                try:
                    calls.append(ToolCall.from_openai(json.loads(body)))
                except json.JSONDecodeError as exc:
                    raise UserError(
                        f"turn {index}: <tool_call> body is not JSON ({exc.msg})"
                    ) from None
            text = _TOOL_CALL.sub("", value).strip() or None
            messages.append(Message(role="assistant", content=text, tool_calls=tuple(calls)))
        elif role == "tool":
            body = re.sub(r"</?tool_response>", "", value).strip()
            messages.append(Message(role="tool", content=body))
        else:
            messages.append(Message(role=role, content=value))  # type: ignore[arg-type]
    return TrainingExample(messages=tuple(messages), tools=tuple(tools), source=source)


def _first_acceptable(values: Any) -> tuple[bool, Any]:
    """BFCL answer lists: ``""`` among them means the parameter may be omitted, and the
    question then rarely asks for it, so the gold call omits it; else the first value."""
    if not isinstance(values, list):
        return True, values
    if "" in values or not values:
        return False, None
    return True, values[0]


def _bfcl_example(
    record: Mapping[str, Any], answer: Mapping[str, Any] | None, source: str
) -> TrainingExample:
    turns = record.get("question")
    if not isinstance(turns, list) or not turns or not isinstance(turns[0], list):
        raise UserError("'question' must be a list of turns (lists of messages)")
    tools = tuple(tool_from_json(f) for f in record.get("function") or ())
    messages = [Message.from_openai(m) for m in turns[0]]
    if answer is None:
        reply = Message(role="assistant", content=NO_CALL_ANSWER)
    else:
        truth = answer.get("ground_truth")
        if not isinstance(truth, list):
            raise UserError(f"answer for {record.get('id')!r} has no 'ground_truth' list")
        calls = []
        for entry in truth:
            if not isinstance(entry, Mapping) or len(entry) != 1:
                raise UserError(
                    f"ground_truth entries must be {{name: {{param: [values]}}}}: {entry!r}"
                )
            ((name, params),) = entry.items()
            arguments = {}
            for param, values in (params or {}).items():
                present, value = _first_acceptable(values)
                if present:
                    arguments[param] = value
            calls.append(ToolCall(name=name, arguments=arguments))
        reply = Message(role="assistant", tool_calls=tuple(calls))
    return TrainingExample(messages=(*messages, reply), tools=tools, source=source)


# --------------------------------------------------------------------------- files and folders


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read training file ({exc})") from None
    stripped = text.lstrip()
    if stripped.startswith("["):  # a whole-file JSON array is accepted too
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        yield from ((i + 1, r) for i, r in enumerate(records))
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                "expected one JSON object per line"
            ) from None


def _answers_for(path: Path) -> dict[str, Mapping[str, Any]] | None:
    answer_path = path.parent / "possible_answer" / path.name
    if not answer_path.is_file():
        return None
    return {
        str(record.get("id")): record
        for _, record in _json_lines(answer_path)
        if isinstance(record, Mapping)
    }


def load_file(path: str | Path) -> list[TrainingExample]:
    """Every example in one file; a malformed line is a ``UserError`` naming ``file:line``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"training file {str(path)!r} does not exist")
    examples: list[TrainingExample] = []
    answers: dict[str, Mapping[str, Any]] | None = None
    answers_loaded = False
    for number, record in _json_lines(path):
        source = f"{path}:{number}"
        if not isinstance(record, Mapping):
            raise UserError(f"{source}: expected a JSON object, got {type(record).__name__}")
        try:
            if "messages" in record:
                examples.append(_from_openai(record, source))
            elif "conversations" in record:
                examples.append(_from_sharegpt(record, source))
            elif "question" in record and "function" in record:
                if not answers_loaded:
                    answers, answers_loaded = _answers_for(path), True
                answer = None if answers is None else answers.get(str(record.get("id")))
                if answers is not None and answer is None:
                    raise UserError(f"no possible_answer entry for id {record.get('id')!r}")
                examples.append(_bfcl_example(record, answer, source))
            else:
                raise UserError(
                    "unrecognised record: expected 'messages' (OpenAI), 'conversations' "
                    "(ShareGPT/Hermes) or 'question' + 'function' (BFCL)"
                )
        except UserError as exc:
            message = str(exc)
            raise UserError(
                message if message.startswith(source) else f"{source}: {message}"
            ) from None
    return examples


def load_examples(paths: str | Path | Iterable[str | Path]) -> list[TrainingExample]:
    """Examples from files and folders (``*.json``/``*.jsonl``, not descending into
    ``possible_answer/``), in a stable order."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    examples: list[TrainingExample] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in (".json", ".jsonl") and "possible_answer" not in p.parts
            )
            if not files:
                raise UserError(f"training folder {str(path)!r} has no .json or .jsonl files")
            for file in files:
                examples.extend(load_file(file))
        else:
            examples.extend(load_file(path))
    return examples


def save_examples(examples: Iterable[TrainingExample], path: str | Path) -> int:
    """Write examples as OpenAI JSON Lines (the format ``load_file`` reads back)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count


@dataclass(frozen=True, kw_only=True)
class Splits:
    train: list[TrainingExample]
    validation: list[TrainingExample]
    test: list[TrainingExample]


def split_examples(
    examples: Sequence[TrainingExample],
    *,
    validation: float = 0.05,
    test: float = 0.05,
    seed: int = 0,
) -> Splits:
    """Shuffle with ``seed`` and cut; the same inputs and seed always give the same split."""
    if not (0 <= validation < 1 and 0 <= test < 1 and validation + test < 1):
        raise UserError(f"split fractions must be in [0, 1) and sum below 1: {validation}, {test}")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = round(len(order) * validation)
    n_test = round(len(order) * test)
    if validation > 0 and len(order) >= 3:
        n_val = max(n_val, 1)
    if test > 0 and len(order) >= 3:
        n_test = max(n_test, 1)
    pick = [examples[i] for i in order]
    return Splits(
        validation=pick[:n_val], test=pick[n_val : n_val + n_test], train=pick[n_val + n_test :]
    )
