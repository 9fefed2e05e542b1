"""``fncall call "question" --tools my_tools.py``: one question, the calls it makes, their results.

The model answers once; its calls run through the executor; the model then answers from the
results. ``--no-execute`` stops after printing the calls. ``--json`` prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from fncall.cli import add_judge_argument, judge_of
from fncall.engine.base import ChatModel
from fncall.errors import UserError
from fncall.execute.chat import ChatResult
from fncall.formats import format_names
from fncall.models import DEFAULT_MODEL
from fncall.pipeline import LocalChat
from fncall.types import ToolCall, ToolChoice, ToolResult


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``call`` and ``chat``."""
    parser.add_argument("--tools", metavar="FILE", help="Python file with the function library")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"catalogue name or model path (default {DEFAULT_MODEL}); with --base-url, the "
        "server's model name",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="use an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) instead of a "
        "local model",
    )
    parser.add_argument(
        "--tool-choice",
        default="auto",
        metavar="auto|required|none|NAME",
        help="auto (default), required, none, or the name of the one tool to call",
    )
    parser.add_argument(
        "--format",
        default="auto",
        choices=["auto", *format_names()],
        help="tool-call syntax for a local model (default: the model's best)",
    )
    parser.add_argument(
        "--no-constrained",
        dest="constrained",
        action="store_false",
        help="generate without a grammar (output parsed tolerantly)",
    )
    add_judge_argument(parser)
    parser.add_argument("--max-tokens", type=int, default=512, help="per model turn (512)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default)")
    parser.add_argument("--system", metavar="TEXT", help="a system message to start with")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", help="what to ask")
    add_model_arguments(parser)
    parser.add_argument(
        "--no-execute", dest="execute", action="store_false", help="print the calls, run nothing"
    )
    parser.add_argument("--json", action="store_true", help="print calls and results as JSON")
    add_retrieval_argument(parser)


def add_retrieval_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retrieve-k",
        type=int,
        default=None,
        metavar="N",
        help="a large --tools library: offer the model only the N tools nearest each request "
        "(its latest user message; fncall.tools.retrieval, the packaged embedding model)",
    )


def retrieving(tools: Any, k: int | None) -> Any:
    """``tools`` as they are, or with ``--retrieve-k`` a ``RetrievingToolSet`` over them with
    every tool embedded (or read from the cache) now, not on the first request."""
    if k is None:
        return tools
    from fncall.tools.retrieval import RetrievingToolSet

    if not tools:
        raise UserError("--retrieve-k needs --tools FILE.py (the library to retrieve from)")
    library = RetrievingToolSet(tools, k=k)
    library.warm()
    return library


def load_chat_model(args: argparse.Namespace) -> ChatModel:
    """The model the options describe: a local engine behind LocalChat, or a remote server."""
    if args.max_tokens < 1:
        raise UserError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    if args.base_url:
        from fncall.engine.remote import RemoteChat

        return RemoteChat(
            args.base_url, args.model, max_tokens=args.max_tokens, temperature=args.temperature
        )
    from fncall import engine  # looked up at call time, so tests can replace load_engine

    return LocalChat(
        engine.load_engine(args.model),
        format=args.format,
        constrained=args.constrained,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        judge=judge_of(args),
        count_threshold=args.count,
        count_coverage=args.count_coverage,
    )


def load_tools(path: str | None) -> Any:
    from fncall.tools import ToolSet
    from fncall.tools.loader import load_tool_file

    return load_tool_file(path) if path else ToolSet()


def tool_choice_from(value: str, tool_names: list[str]) -> ToolChoice:
    """``auto|required|none`` or a tool name (which must exist)."""
    if value in ("auto", "required", "none"):
        return ToolChoice.parse(value)
    if value not in tool_names:
        raise UserError(
            f"--tool-choice {value!r} is neither auto, required, none nor a tool name; "
            f"tools: {', '.join(tool_names) or 'none loaded (pass --tools FILE)'}"
        )
    return ToolChoice(mode="required", allowed=(value,))


def show_call(call: ToolCall) -> str:
    return f"{call.name}({json.dumps(dict(call.arguments), ensure_ascii=False)})"


def show_result(result: ToolResult) -> str:
    text = result.render()
    return text if len(text) <= 2000 else text[:2000] + "..."


def _as_json(result: ChatResult) -> str:
    return json.dumps(
        {
            "calls": [
                {"id": c.id, "name": c.name, "arguments": dict(c.arguments)} for c in result.calls
            ],
            "results": [
                {
                    "call_id": r.call_id,
                    "name": r.name,
                    "ok": r.ok,
                    "content": r.content,
                    "error": r.error,
                }
                for r in result.results
            ],
            "answer": result.text,
        },
        ensure_ascii=False,
        indent=2,
        default=str,
    )


def run(args: argparse.Namespace) -> int:
    from fncall.execute.chat import chat
    from fncall.types import Message

    tools = retrieving(load_tools(args.tools), args.retrieve_k)
    choice = tool_choice_from(args.tool_choice, list(tools.names))
    model = load_chat_model(args)
    messages = [Message(role="user", content=args.question)]
    if args.system:
        messages.insert(0, Message(role="system", content=args.system))
    result = chat(messages, tools, model=model, execute=args.execute, tool_choice=choice)
    if args.json:
        print(_as_json(result))
        return 0
    by_id = {r.call_id: r for r in result.results}
    for call in result.calls:
        print(f"call    {show_call(call)}")
        if call.id in by_id:
            outcome = by_id[call.id]
            print(f"{'result' if outcome.ok else 'error':<7} {show_result(outcome)}")
    if not result.calls:
        print("(no function called)")
    if result.text:
        print(f"answer  {result.text}")
    return 0
