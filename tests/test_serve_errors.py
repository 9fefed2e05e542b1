"""Malformed requests, limits and API keys: the status code and OpenAI's error object."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from fncall.engine.scripted import ScriptedChat
from fncall.errors import UserError
from fncall.serve import check_exposure, create_app
from fncall.serve.testing import BackgroundServer
from fncall.types import AssistantTurn, ToolCall

MODEL = "scripted-test"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ASK = [{"role": "user", "content": "hi"}]
KEY = "sk-test-7f3a9c"


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    model = ScriptedChat()
    app = create_app(model, model_name=MODEL, max_body_bytes=20_000, max_tokens_cap=512)
    with BackgroundServer(app) as running:
        running.model = model
        yield running


def post(server: BackgroundServer, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    return httpx.post(
        server.base_url + "/v1/chat/completions",
        content=content,
        headers={"content-type": "application/json"},
        timeout=10,
        **kwargs,
    )


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    if param is not None:
        assert error["param"] == param, error
    return error


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"model": MODEL}, "messages", "Missing required parameter"),
        ({"model": MODEL, "messages": []}, "messages", "at least 1"),
        (
            {"model": MODEL, "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
            "'user'",
        ),
        ({"model": MODEL, "messages": ASK, "temperature": 3}, "temperature", "2"),
        ({"model": MODEL, "messages": ASK, "max_tokens": 100_000}, "max_tokens", "cap of 512"),
        ({"model": MODEL, "messages": ASK, "n": 2}, "n", "1"),
        ({"model": MODEL, "messages": ASK, "frobnicate": True}, "frobnicate", "Unrecognized"),
        (
            {"model": MODEL, "messages": ASK, "tools": [TOOL], "tool_choice": "sometimes"},
            "tool_choice",
            None,
        ),
        (
            {
                "model": MODEL,
                "messages": ASK,
                "tools": [TOOL],
                "tool_choice": {"type": "function", "function": {"name": "nope"}},
            },
            "tool_choice",
            "unknown tool",
        ),
        ({"model": MODEL, "messages": ASK, "tool_choice": "required"}, "tool_choice", "tools"),
        (
            {
                "model": MODEL,
                "messages": ASK,
                "tools": [{"type": "function", "function": {"name": "bad name!"}}],
            },
            "tools[0].function.name",
            "pattern",
        ),
        (
            {
                "model": MODEL,
                "messages": ASK,
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {"type": "object", "properties": 5},
                        },
                    }
                ],
            },
            "tools[0].function.parameters",
            "JSON Schema",
        ),
        ({"model": MODEL, "messages": ASK, "tools": [TOOL, TOOL]}, "tools", "unique"),
        (
            {
                "model": MODEL,
                "messages": [*ASK, {"role": "tool", "tool_call_id": "call_x", "content": "1"}],
            },
            "messages[1].tool_call_id",
            "no earlier",
        ),
        (
            {
                "model": MODEL,
                "messages": ASK,
                "response_format": {"type": "json_schema", "json_schema": {"name": "answer"}},
            },
            "response_format.json_schema",
            "needs a 'schema'",
        ),
        (
            {
                "model": MODEL,
                "messages": ASK,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": {"type": "objet"}},
                },
            },
            "response_format.json_schema.schema",
            "not a valid JSON Schema",
        ),
    ],
)
def test_bad_requests_name_the_field(
    server: BackgroundServer, body: dict, param: str, says: str | None
) -> None:
    error = assert_error(post(server, body), 400, param)
    assert error["type"] == "invalid_request_error"
    if says:
        assert says in error["message"], error["message"]
    assert server.model.requests == []


def test_invalid_json_and_wrong_types(server: BackgroundServer) -> None:
    assert_error(post(server, b"{not json"), 400)
    assert_error(post(server, b"[1, 2]"), 400)
    assert_error(post(server, {"model": MODEL, "messages": "hello"}), 400, "messages")


def test_unknown_model_path_and_method(server: BackgroundServer) -> None:
    error = assert_error(post(server, {"model": "gpt-5", "messages": ASK}), 404, "model")
    assert error["code"] == "model_not_found" and MODEL in error["message"]
    assert_error(httpx.get(server.base_url + "/v1/nothing-here"), 404)
    assert_error(httpx.get(server.base_url + "/v1/chat/completions"), 405)


def test_body_too_large(server: BackgroundServer) -> None:
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 30_000}]}
    error = assert_error(post(server, big), 413)
    assert "20000" in error["message"]


def test_openai_client_sees_errors(server: BackgroundServer) -> None:
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[TOOL],
            tool_choice={"type": "function", "function": {"name": "missing"}},
        )
    assert info.value.status_code == 400
    assert "missing" in info.value.message
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="other", messages=ASK)


def test_model_failure_is_a_500_without_internals() -> None:
    def broken(messages: object, tools: object) -> AssistantTurn:
        raise RuntimeError("secret internal detail /home/x/model.py")

    app = create_app(ScriptedChat([broken]), model_name=MODEL)
    with BackgroundServer(app) as server:
        error = assert_error(post(server, {"model": MODEL, "messages": ASK}), 500)
    assert error["type"] == "server_error" and "secret" not in error["message"]


def test_unusable_streamed_arguments_become_an_error_event() -> None:
    class BrokenStream(ScriptedChat):
        def stream(self, messages, tools=(), **kwargs):
            from fncall.engine.base import ChatDelta

            yield ChatDelta(index=0, id="call_1", name="get_weather", arguments='{"city": ')
            yield ChatDelta(finish_reason="length")

    app = create_app(BrokenStream(), model_name=MODEL)
    with BackgroundServer(app) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        stream = client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            tools=[TOOL],
            stream=True,
        )
        with pytest.raises(openai.APIError) as info:
            list(stream)
    # Fed back to the model each step (the conversation loop's rule); after the last step the
    # client gets the error, not a traceback.
    assert "unusable answer" in str(info.value) and "Traceback" not in str(info.value)


@pytest.fixture(scope="module")
def keyed() -> Iterator[BackgroundServer]:
    model = ScriptedChat()
    with BackgroundServer(create_app(model, model_name=MODEL, api_key=KEY)) as running:
        running.model = model
        yield running


def test_api_key_required(keyed: BackgroundServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for api_key in ("", "sk-wrong", KEY + "x", KEY[:-1]):
        client = openai.OpenAI(
            base_url=keyed.base_url + "/v1", api_key=api_key or "none", max_retries=0
        )
        with pytest.raises(openai.AuthenticationError) as info:
            client.chat.completions.create(model=MODEL, messages=ASK)
        assert info.value.status_code == 401
        assert KEY not in str(info.value.body)
    no_header = httpx.post(keyed.base_url + "/v1/chat/completions", json={})
    assert assert_error(no_header, 401)["code"] == "missing_api_key"
    assert_error(httpx.get(keyed.base_url + "/v1/models"), 401)
    assert keyed.model.requests == []
    assert KEY not in caplog.text  # logs never carry the key, right or wrong


def test_right_key_works(keyed: BackgroundServer) -> None:
    keyed.model.enqueue(AssistantTurn(tool_calls=(ToolCall(name="get_weather"),)))
    client = openai.OpenAI(base_url=keyed.base_url + "/v1", api_key=KEY, max_retries=0)
    reply = client.chat.completions.create(model=MODEL, messages=ASK, tools=[TOOL])
    assert reply.choices[0].finish_reason == "tool_calls"
    assert httpx.get(keyed.base_url + "/health").json()["status"] == "ok"


def test_non_loopback_bind_needs_a_key() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.5"):
        check_exposure(host, None)
    for host in ("0.0.0.0", "::", "192.168.1.4", "example.org"):
        with pytest.raises(UserError, match="--api-key"):
            check_exposure(host, None)
        check_exposure(host, KEY)
