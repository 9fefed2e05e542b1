"""Execution: run tool calls safely (executor, sandbox, permission policy), the one conversation
loop (``conversation``) and what drives it (``Agent``, ``chat``)."""

from fncall.execute.agent import Agent
from fncall.execute.chat import ChatResult, chat
from fncall.execute.conversation import (
    AgentEvent,
    AgentRun,
    AskModel,
    CallsRepeated,
    Finished,
    ModelTurn,
    RunCalls,
    ToolCallsStarted,
    ToolConversation,
    ToolResultsReady,
    arun_conversation,
    run_conversation,
)
from fncall.execute.executor import Executor, aexecute, execute
from fncall.execute.policy import Policy, Verdict
from fncall.execute.sandbox import SandboxLimits, SandboxResult, run_sandboxed

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentRun",
    "AskModel",
    "CallsRepeated",
    "ChatResult",
    "Executor",
    "Finished",
    "ModelTurn",
    "Policy",
    "RunCalls",
    "SandboxLimits",
    "SandboxResult",
    "ToolCallsStarted",
    "ToolConversation",
    "ToolResultsReady",
    "Verdict",
    "aexecute",
    "arun_conversation",
    "chat",
    "execute",
    "run_conversation",
    "run_sandboxed",
]
