"""Execution: run tool calls safely (executor, sandbox, permission policy) and the agent loop."""

from fncall.execute.agent import (
    Agent,
    AgentEvent,
    AgentRun,
    Finished,
    ModelTurn,
    ToolCallsStarted,
    ToolResultsReady,
)
from fncall.execute.executor import Executor, ToolLookup, aexecute, execute
from fncall.execute.policy import Policy, Verdict
from fncall.execute.sandbox import SandboxLimits, SandboxResult, run_sandboxed

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentRun",
    "Executor",
    "Finished",
    "ModelTurn",
    "Policy",
    "SandboxLimits",
    "SandboxResult",
    "ToolCallsStarted",
    "ToolLookup",
    "ToolResultsReady",
    "Verdict",
    "aexecute",
    "execute",
    "run_sandboxed",
]
