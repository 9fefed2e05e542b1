"""``fncall chat --tools my_tools.py``: an interactive chat that streams tokens and runs calls.

Type a message and press Enter. ``/exit`` (or end of input) quits, ``/reset`` forgets the
conversation, ``/tools`` lists the tools.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from fncall.cli.call import (
    add_model_arguments,
    load_chat_model,
    load_tools,
    show_call,
    show_result,
    tool_choice_from,
)
from fncall.engine.base import ChatModel
from fncall.errors import ModelOutputError
from fncall.pipeline import assemble_turn
from fncall.types import Message, ToolChoice


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument(
        "--max-steps", type=int, default=4, help="model turns per message, calls included (4)"
    )


def _turn(
    model: ChatModel,
    history: list[Message],
    tools: Any,
    choice: ToolChoice,
    max_steps: int,
    out: TextIO,
) -> None:
    """One user message: stream the model, run its calls, repeat until it answers in text."""
    from fncall.execute import execute

    for step in range(max_steps):
        deltas = []
        started = False
        for delta in model.stream(history, tools.tools, tool_choice=choice):
            deltas.append(delta)
            if delta.content:
                if not started:
                    out.write("model> ")
                    started = True
                out.write(delta.content)
                out.flush()
        if started:
            out.write("\n")
        turn = assemble_turn(deltas)
        history.append(turn.to_message())
        if not turn.tool_calls:
            return
        for call in turn.tool_calls:
            out.write(f"  call    {show_call(call)}\n")
        results = execute(turn.tool_calls, tools)
        for result in results:
            out.write(f"  {'result' if result.ok else 'error':<7} {show_result(result)}\n")
            history.append(result.to_message())
        out.flush()
        if step == 0 and choice.mode == "required":
            choice = ToolChoice()  # after the required calls, let the model answer
    out.write(f"(stopped after {max_steps} model turns)\n")


def run(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    tools = load_tools(args.tools)
    choice = tool_choice_from(args.tool_choice, list(tools.names))
    model = load_chat_model(args)
    base = [Message(role="system", content=args.system)] if args.system else []
    history = list(base)
    interactive = stdin.isatty()
    names = ", ".join(tools.names) or "none"
    out.write(f"fncall chat: tools: {names}. /exit quits, /reset forgets, /tools lists.\n")
    while True:
        if interactive:
            out.write("you> ")
            out.flush()
        line = stdin.readline()
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if text == "/exit":
            break
        if text == "/reset":
            history = list(base)
            out.write("(conversation cleared)\n")
            continue
        if text == "/tools":
            for tool in tools.tools:
                summary = tool.description.splitlines()[0] if tool.description else ""
                out.write(f"  {tool.name}: {summary}\n")
            continue
        history.append(Message(role="user", content=text))
        try:
            _turn(model, history, tools, choice, args.max_steps, out)
        except ModelOutputError as exc:
            out.write(f"(the model's output could not be used: {exc})\n")
            history.pop()
    out.flush()
    return 0
