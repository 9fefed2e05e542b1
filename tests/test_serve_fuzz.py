"""Schemathesis fuzzes every operation of the server's OpenAPI schema: no input may give a 5xx,
and every error is an OpenAI error object. Bounded to 50 examples per operation."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, settings

from fncall.engine.base import ChatDelta, ChatModel
from fncall.engine.scripted import turn_to_deltas
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer
from fncall.types import AssistantTurn, Message, Tool, ToolCall

schemathesis = pytest.importorskip("schemathesis")

MODEL = "fuzz"


class EchoChat(ChatModel):
    """Always answers: a call to the first offered tool, a simple value valid under the
    response format if one is asked for, or an echo of the last message."""

    def complete(
        self, messages: Sequence[Message], tools: Sequence[Tool] = (), **kwargs: Any
    ) -> AssistantTurn:
        choice = kwargs.get("tool_choice")
        if tools and (choice is None or choice.mode != "none"):
            offered = choice.selected(tools) if choice is not None else list(tools)
            if offered:
                return AssistantTurn(tool_calls=(ToolCall(name=offered[0].name),))
        response_format = kwargs.get("response_format")
        if response_format is not None:
            return AssistantTurn(content=json.dumps(simple_value(response_format)))
        return AssistantTurn(content=(messages[-1].content or "")[:50] or "ok")

    def stream(
        self, messages: Sequence[Message], tools: Sequence[Tool] = (), **kwargs: Any
    ) -> Iterator[ChatDelta]:
        return iter(turn_to_deltas(self.complete(messages, tools, **kwargs)))


def simple_value(response_format: dict[str, Any]) -> Any:
    schema = response_format.get("json_schema", {}).get("schema", {"type": "object"})
    validator = jsonschema.Draft202012Validator(schema)
    candidates: list[Any] = [{}, [], "", 0, None, False]
    return next((value for value in candidates if validator.is_valid(value)), {})


app = create_app(EchoChat(), model_name=MODEL, max_body_bytes=64_000)
schema = schemathesis.openapi.from_dict(app.openapi())


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with BackgroundServer(app) as running:
        yield running


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any, server: BackgroundServer) -> None:
    if isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
        case.body["model"] = MODEL  # a random model name would stop every case at the 404
    response = case.call(base_url=server.base_url, timeout=10)
    assert response.status_code < 500, (case.as_curl_command(), response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert "Traceback" not in response.text
