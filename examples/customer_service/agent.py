"""The support agent: the desk's tools, a refund policy and a system prompt, driven by fncall's
agent loop (``fncall.execute.Agent``).

Refunds go through fncall's permission policy: ``request_refund`` is an ``"ask"`` tool, so the
executor hands the validated call to ``confirm`` before it runs, and a call nobody approved
becomes a ``PermissionDenied`` result the model reads (and explains) instead of a refund.
"""

from __future__ import annotations

from collections.abc import Callable

from examples.customer_service.tools import SupportDesk
from fncall.engine.base import ChatModel
from fncall.errors import ToolError
from fncall.execute import Agent, AgentEvent, AgentRun, Policy
from fncall.types import Message, ToolCall

SHOP = "Brightcart"
# Short on purpose: with a longer prompt ("use the tools to ...; answer in one to three
# sentences; answer other questions without a tool") the default model answered "Where is my
# order 1231?" with "you can call the `find_order` function" instead of calling it.
SYSTEM_PROMPT = (
    f"You are the customer support assistant of {SHOP}, an online electronics shop. "
    "The shop's rules are in its help articles."
)
# look-up, act, answer, and one turn to spare for a corrected call
MAX_STEPS = 4

AskPerson = Callable[[str], bool]


def refund_confirmation(desk: SupportDesk, ask_person: AskPerson) -> Callable[[ToolCall], bool]:
    """The policy's ``ask`` callback for ``request_refund``: shows the person what the refund
    would do and returns their answer.

    A refund the desk would refuse anyway (unknown order, over the limit, already refunded) is
    let through unasked: the tool then refuses it inside its transaction with the reason, which
    tells the customer more than "not approved" would, and nobody is asked to confirm a refund
    that cannot happen.
    """

    def confirm(call: ToolCall) -> bool:
        try:
            summary = desk.refund_summary(call.arguments["order_id"])
        except ToolError:
            return True
        return ask_person(summary)

    return confirm


def build_agent(
    model: ChatModel,
    desk: SupportDesk,
    *,
    ask_person: AskPerson,
    on_event: Callable[[AgentEvent], None] | None = None,
) -> Agent:
    policy = Policy(rules={"request_refund": "ask"}, ask=refund_confirmation(desk, ask_person))
    return Agent(model, desk.toolset(), max_steps=MAX_STEPS, policy=policy, on_event=on_event)


def ask(agent: Agent, question: str) -> AgentRun:
    """One customer question, answered through the agent loop under the system prompt."""
    return agent.run(
        [Message(role="system", content=SYSTEM_PROMPT), Message(role="user", content=question)]
    )
