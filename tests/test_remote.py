"""RemoteChat against a real socket: a minimal fake OpenAI endpoint served on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import function_tool
from fncall.engine.deltas import assemble_turn
from fncall.engine.remote import RemoteChat
from fncall.errors import ModelOutputError, UserError
from fncall.types import Message, Tool

WEATHER = function_tool("get_weather", description="Current weather", city={"type": "string"})
TIME = Tool(name="get_time", description="Current time")
USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 9,
    "total_tokens": 129,
    "prompt_tokens_details": {"cached_tokens": 96},
}


class FakeOpenAI(ThreadingHTTPServer):
    """Answers /v1/chat/completions with queued messages; keeps every request body."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.replies: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        if self.path != "/v1/chat/completions" or not self.server.replies:
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        message = self.server.replies.pop(0)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        if body.get("stream"):
            self._stream(body, message, finish)
            return
        self._send(
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", **message},
                        "finish_reason": finish,
                    }
                ],
                "usage": USAGE,
            },
        )

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, body: dict, message: dict, finish: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for delta in _deltas(message):
            self._event({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event({"choices": [], "usage": USAGE})
        self.wfile.write(b"data: [DONE]\n\n")

    def _event(self, chunk: dict) -> None:
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
        self.wfile.write(f"data: {json.dumps({**base, **chunk})}\n\n".encode())
        self.wfile.flush()


def _deltas(message: dict) -> Iterator[dict]:
    text = message.get("content") or ""
    for i in range(0, len(text), 5):
        yield {"content": text[i : i + 5]}
    for index, call in enumerate(message.get("tool_calls") or []):
        yield {
            "tool_calls": [
                {
                    "index": index,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
            ]
        }
        arguments = call["function"]["arguments"]
        for i in range(0, len(arguments), 4):
            yield {
                "tool_calls": [{"index": index, "function": {"arguments": arguments[i : i + 4]}}]
            }


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()


def call(id_: str, name: str, arguments: str) -> dict:
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_complete_passes_everything_through_and_converts_calls(server):
    server.replies.append(
        {
            "content": None,
            "tool_calls": [
                call("call_a", "get_weather", '{"city": "Paris"}'),
                call("call_b", "get_time", ""),
            ],
        }
    )
    model = RemoteChat(server.url, "served-model", temperature=0.0)
    history = [Message(role="system", content="Be brief."), Message(role="user", content="Hi")]
    turn = model.complete(history, [WEATHER, TIME], parallel_tool_calls=False, max_tokens=50)
    assert [(c.id, c.name, dict(c.arguments)) for c in turn.tool_calls] == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_time", {}),
    ]
    assert turn.finish_reason == "tool_calls" and turn.content is None
    body = server.requests[0]
    assert body["model"] == "served-model" and body["max_tokens"] == 50
    assert body["temperature"] == 0.0
    assert body["messages"] == [m.to_openai() for m in history]
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "get_time"]
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is False


def test_tool_choice_shapes(server):
    server.replies += [{"content": "a"}, {"content": "b"}, {"content": "c"}]
    model = RemoteChat(server.url, "m")
    model.complete(
        "x", [WEATHER, TIME], tool_choice={"type": "function", "function": {"name": "get_time"}}
    )
    model.complete("x", [WEATHER, TIME], tool_choice="none")
    model.complete(
        "x",
        [WEATHER, TIME],
        tool_choice={
            "type": "allowed_tools",
            "allowed_tools": {
                "mode": "required",
                "tools": [
                    {"type": "function", "function": {"name": "get_weather"}},
                    {"type": "function", "function": {"name": "get_time"}},
                ],
            },
        },
    )
    named, none, allowed = server.requests
    assert named["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert [t["function"]["name"] for t in named["tools"]] == ["get_time"]
    assert "tools" not in none and "tool_choice" not in none
    assert allowed["tool_choice"] == "required" and len(allowed["tools"]) == 2


def test_plain_text_answer(server):
    server.replies.append({"content": "Hello there."})
    turn = RemoteChat(server.url, "m").complete("Hi")
    assert turn.content == "Hello there." and turn.tool_calls == ()
    assert turn.finish_reason == "stop"
    assert (turn.prompt_tokens, turn.completion_tokens, turn.cached_tokens) == (120, 9, 96)


def test_stream_reassembles(server):
    server.replies.append(
        {
            "content": "Checking.",
            "tool_calls": [call("call_z", "get_weather", '{"city": "Reykjavík"}')],
        }
    )
    deltas = list(RemoteChat(server.url, "m").stream("Weather?", [WEATHER]))
    turn = assemble_turn(deltas)
    assert turn.content == "Checking."
    assert [(c.id, dict(c.arguments)) for c in turn.tool_calls] == [
        ("call_z", {"city": "Reykjavík"})
    ]
    assert turn.finish_reason == "tool_calls"
    assert server.requests[0]["stream"] is True
    assert (turn.prompt_tokens, turn.completion_tokens, turn.cached_tokens) == (120, 9, 96)


def test_bad_arguments_from_the_server_are_model_output_errors(server):
    server.replies.append({"content": None, "tool_calls": [call("c", "get_weather", "{city")]})
    with pytest.raises(ModelOutputError, match="not JSON"):
        RemoteChat(server.url, "m").complete("x", [WEATHER])


def test_http_errors_name_the_endpoint(server):
    with pytest.raises(UserError, match=r"127\.0\.0\.1.*HTTP 404"):
        RemoteChat(server.url, "m").complete("x")  # nothing queued: the fake answers 404


def test_unreachable_endpoint_names_the_url():
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(UserError, match=f"cannot reach .*{url}"):
        RemoteChat(url, "m", timeout=5).complete("x")


def test_bad_construction():
    with pytest.raises(UserError, match="http"):
        RemoteChat("localhost:8000", "m")
    with pytest.raises(UserError, match=r"unknown option.*frequency"):
        RemoteChat("http://127.0.0.1:1/v1", "m", frequency=1)


@pytest.mark.parametrize(
    "arguments", ["[" * 1000, '{"city": ' + "9" * 5001 + "}"], ids=["1000 [", "5001 digits"]
)
def test_hostile_arguments_from_the_server_are_model_output_errors(server, arguments):
    """Issue 20, item 6: a remote model's arguments nested 1,000 deep or holding a 5,001-digit
    integer raised RecursionError or ValueError, plain and streamed."""
    for _ in range(2):
        server.replies.append(
            {"content": None, "tool_calls": [call("c", "get_weather", arguments)]}
        )
    with pytest.raises(ModelOutputError) as info:
        RemoteChat(server.url, "m").complete("x", [WEATHER])
    assert info.value.raw == arguments
    deltas = list(RemoteChat(server.url, "m").stream("x", [WEATHER]))
    with pytest.raises(ModelOutputError) as info:
        assemble_turn(deltas)
    assert info.value.raw == arguments
