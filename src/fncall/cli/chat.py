"""``fncall chat --tools my_tools.py``: an interactive chat that streams tokens and runs calls.

Type a message and press Enter. ``/exit`` (or end of input) quits, ``/reset`` forgets the
conversation, ``/tools`` lists the tools.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from fncall.cli.call import (
    add_model_arguments,
    add_retrieval_argument,
    load_chat_model,
    load_tools,
    retrieving,
    show_call,
    show_result,
    tool_choice_from,
)
from fncall.engine.base import ChatModel
from fncall.engine.deltas import assemble_turn
from fncall.execute import (
    AgentEvent,
    AskModel,
    CallsRepeated,
    Executor,
    ModelTurn,
    ToolCallsStarted,
    ToolConversation,
    ToolResultsReady,
    run_conversation,
)
from fncall.tools import AbstractToolSet
from fncall.tools.retrieval import offered_tools
from fncall.types import AssistantTurn, Message, ToolChoice


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument(
        "--max-steps", type=int, default=4, help="model turns per message, calls included (4)"
    )
    add_retrieval_argument(parser)


def _turn(
    model: ChatModel,
    history: list[Message],
    tools: AbstractToolSet,
    choice: ToolChoice,
    max_steps: int,
    out: TextIO,
) -> list[Message]:
    """One user message through the conversation loop: stream each model turn, show and run
    its calls, until the model answers. Returns the conversation so far."""

    def complete(ask: AskModel) -> AssistantTurn:
        deltas = []
        started = False
        for delta in ask.send(model.stream):
            deltas.append(delta)
            if delta.content:
                if not started:
                    out.write("model> ")
                    started = True
                out.write(delta.content)
                out.flush()
        if started:
            out.write("\n")
        return assemble_turn(deltas)

    def show(event: AgentEvent) -> None:
        if isinstance(event, ToolCallsStarted):
            for call in event.calls:
                out.write(f"  call    {show_call(call)}\n")
        elif isinstance(event, ToolResultsReady):
            for result in event.results:
                out.write(f"  {'result' if result.ok else 'error':<7} {show_result(result)}\n")
        elif isinstance(event, ModelTurn) and event.error is not None:
            out.write(f"(the model's output could not be used: {event.error})\n")
        elif isinstance(event, CallsRepeated):
            out.write("(the model repeated a call it has the result of; asking it to answer)\n")
        out.flush()

    offered = offered_tools(tools, history, choice)  # a large library: the nearest tools
    conversation = ToolConversation(history, offered, max_steps=max_steps, tool_choice=choice)
    run = run_conversation(conversation, complete, Executor(tools).run, show)
    if run.stop_reason == "max_steps":
        out.write(f"(stopped after {max_steps} model turns)\n")
    return list(run.messages)


def run(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    tools = retrieving(load_tools(args.tools), args.retrieve_k)
    choice = tool_choice_from(args.tool_choice, list(tools.names))
    model = load_chat_model(args)
    base = [Message(role="system", content=args.system)] if args.system else []
    history = list(base)
    interactive = stdin.isatty()
    names = ", ".join(tools.names) or "none"
    if args.retrieve_k is not None:
        names = f"{len(tools.names)}, the {args.retrieve_k} nearest offered per message"
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
        history = _turn(model, history, tools, choice, args.max_steps, out)
    out.flush()
    return 0
