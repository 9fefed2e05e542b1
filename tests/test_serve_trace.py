"""Server-side tool execution, the SQLite trace log and its export, and the CLI's guards."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import textwrap
from collections.abc import Sequence
from pathlib import Path

import openai
import pytest

from fncall.cli import main
from fncall.engine.scripted import ScriptedChat
from fncall.errors import UserError
from fncall.serve import create_app, export_training_data, read_exchanges
from fncall.serve.testing import BackgroundServer
from fncall.serve.wire import EXECUTED_FIELD
from fncall.tools import load_tool_file
from fncall.types import AssistantTurn, Message, Tool, ToolCall

MODEL = "scripted-test"
TOOLS_FILE = textwrap.dedent('''
    def add(a: int, b: int) -> int:
        """Add two integers.

        Args:
            a: The first number.
            b: The second number.
        """
        return a + b


    def _helper() -> None:
        pass
''')


@pytest.fixture
def tools(tmp_path: Path) -> list[Tool]:
    path = tmp_path / "my_tools.py"
    path.write_text(TOOLS_FILE)
    return list(load_tool_file(path))


def answer_from_tool_result(messages: Sequence[Message], tools: Sequence[Tool]) -> str:
    last = messages[-1]
    assert last.role == "tool", "the server should have run the call and sent back the result"
    return f"The sum is {last.content}."


def test_load_tools_file(tools: list[Tool], tmp_path: Path) -> None:
    assert [t.name for t in tools] == ["add"]
    assert tools[0].function is not None and tools[0].function(2, 3) == 5
    assert set(tools[0].parameters["properties"]) == {"a", "b"}
    with pytest.raises(UserError, match="does not exist"):
        load_tool_file(tmp_path / "missing.py")
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(UserError, match="exposes no tools"):
        load_tool_file(empty)


@pytest.mark.parametrize("stream", [False, True])
def test_server_executes_its_tools(tools: list[Tool], tmp_path: Path, stream: bool) -> None:
    model = ScriptedChat(
        [
            AssistantTurn(
                tool_calls=(ToolCall(name="add", arguments={"a": 2, "b": "3"}, id="call_add"),)
            ),
            answer_from_tool_result,
        ]
    )
    db = tmp_path / "trace.db"
    app = create_app(model, model_name=MODEL, tools=tools, execute_tools=True, trace_db=db)
    with BackgroundServer(app) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        ask = [{"role": "user", "content": "2 + 3?"}]
        if stream:
            content, executed, finish = "", [], None
            for chunk in client.chat.completions.create(
                model=MODEL,
                messages=ask,
                stream=True,
            ):
                executed.extend((chunk.model_extra or {}).get(EXECUTED_FIELD) or [])
                if chunk.choices:
                    content += chunk.choices[0].delta.content or ""
                    assert not chunk.choices[0].delta.tool_calls
                    finish = chunk.choices[0].finish_reason or finish
        else:
            reply = client.chat.completions.create(model=MODEL, messages=ask)
            content = reply.choices[0].message.content or ""
            finish = reply.choices[0].finish_reason
            executed = (reply.model_extra or {})[EXECUTED_FIELD]
    assert content == "The sum is 5." and finish == "stop"
    assert [m["role"] for m in executed] == ["assistant", "tool"]
    assert executed[0]["tool_calls"][0]["function"]["name"] == "add"
    assert executed[1] == {
        "role": "tool",
        "content": "5",
        "tool_call_id": "call_add",
        "name": "add",
    }
    # the model saw the server's tools (the request brought none), then the tool result
    assert [t.name for t in model.requests[0].tools] == ["add"]
    assert [m.role for m in model.requests[1].messages] == ["user", "assistant", "tool"]

    (exchange,) = list(read_exchanges(db))
    assert exchange["status"] == 200 and exchange["stream"] is stream
    assert exchange["latency_s"] > 0
    assert exchange["executed"] == executed
    assert exchange["response"]["content"] == "The sum is 5."


def test_client_defined_tools_are_not_executed(tools: list[Tool]) -> None:
    model = ScriptedChat([AssistantTurn(tool_calls=(ToolCall(name="add", arguments={"a": 1}),))])
    app = create_app(model, model_name=MODEL, tools=tools, execute_tools=True)
    redefined = {
        "type": "function",
        "function": {
            "name": "add",
            "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
        },
    }
    with BackgroundServer(app) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "x"}],
            tools=[redefined],
        )
    assert reply.choices[0].finish_reason == "tool_calls"
    assert EXECUTED_FIELD not in (reply.model_extra or {})


@pytest.mark.parametrize("raised", [SystemExit(1), KeyboardInterrupt(), asyncio.CancelledError()])
def test_an_async_tool_raising_a_base_exception_does_not_stop_the_server(
    raised: BaseException,
) -> None:
    """Issue 20, item 1: SystemExit from an async tool stopped uvicorn (then connection
    refused); CancelledError gave a plain-text 500. The model must read the error instead."""

    async def quit_() -> None:
        raise raised

    tool = Tool(name="quit", parameters={"type": "object", "properties": {}}, function=quit_)
    model = ScriptedChat(
        [
            AssistantTurn(tool_calls=(ToolCall(name="quit", arguments={}, id="call_quit"),)),
            lambda messages, tools: f"The tool said {messages[-1].content}",
            "still here",
        ]
    )
    app = create_app(model, model_name=MODEL, tools=[tool], execute_tools=True)
    with BackgroundServer(app) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        ask = [{"role": "user", "content": "quit"}]
        reply = client.chat.completions.create(model=MODEL, messages=ask)
        again = client.chat.completions.create(model=MODEL, messages=ask)
    assert reply.choices[0].message.content == (
        f"The tool said Error: {type(raised).__name__}"
        + (": 1" if isinstance(raised, SystemExit) else "")
    )
    assert again.choices[0].message.content == "still here"


def test_a_redos_pattern_does_not_block_the_server() -> None:
    """Issue 20, item 3: validating a ReDoS ``pattern`` ran on the event loop (``/health``
    took 6.6 s meanwhile); now it is bounded and off the loop."""
    import threading
    import time
    import urllib.request

    tool = Tool(
        name="check",
        parameters={
            "type": "object",
            "properties": {"x": {"type": "string", "pattern": "^(a|a)*$"}},
        },
        function=lambda x: x,
    )
    evil = "a" * 28 + "!"
    model = ScriptedChat(
        [
            AssistantTurn(tool_calls=(ToolCall(name="check", arguments={"x": evil}),)),
            lambda messages, tools: str(messages[-1].content),
        ]
    )
    app = create_app(model, model_name=MODEL, tools=[tool], execute_tools=True)
    replies: list[str | None] = []
    with BackgroundServer(app) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)

        def ask() -> None:
            reply = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "check"}]
            )
            replies.append(reply.choices[0].message.content)

        asking = threading.Thread(target=ask)
        started = time.monotonic()
        asking.start()
        while not model.requests and time.monotonic() - started < 10:
            time.sleep(0.01)
        # The model's turn is in: the arguments are being validated now. Measured from when
        # the request was meant to go: a regex holding the GIL stops this thread too.
        health_started = time.monotonic() + 0.2
        time.sleep(0.2)
        with urllib.request.urlopen(server.base_url + "/health", timeout=30) as response:
            assert response.status == 200
        health_s = time.monotonic() - health_started
        asking.join(30)
        total_s = time.monotonic() - started
    assert health_s < 0.5, f"/health took {health_s:.2f} s while a pattern was matched"
    assert total_s < 5.0  # the pattern's 1 s of CPU, on a machine that may be busy
    [answer] = replies
    assert (
        answer is not None and answer.startswith("Error: ArgumentError") and "took longer" in answer
    )


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("tool_choice", "parallel"),
    [
        ({"type": "function", "function": {"name": "add"}}, True),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "auto",
                    "tools": [{"type": "function", "function": {"name": "add"}}],
                },
            },
            True,
        ),
        ("none", True),
        ("auto", False),
    ],
)
def test_calls_the_request_excluded_never_run_on_the_server(
    tool_choice: object, parallel: bool, stream: bool
) -> None:
    """Issue 20, item 4: ``--execute-tools`` ran ``delete_everything`` when the request named
    only ``add`` (or ``none``), and ran both calls of a turn under parallel_tool_calls=false."""
    ran: list[str] = []

    def add(a: int, b: int) -> int:
        ran.append("add")
        return a + b

    def delete_everything() -> str:
        ran.append("delete_everything")
        return "deleted"

    tools = [
        Tool(
            name="add",
            parameters={
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            },
            function=add,
        ),
        Tool(
            name="delete_everything",
            parameters={"type": "object", "properties": {}},
            function=delete_everything,
        ),
    ]
    add_first = AssistantTurn(
        tool_calls=(
            ToolCall(name="add", arguments={"a": 1, "b": 2}),
            ToolCall(name="delete_everything", arguments={}),
        )
    )
    turns = (
        [add_first]
        if tool_choice == "auto"
        else [AssistantTurn(tool_calls=(ToolCall(name="delete_everything", arguments={}),))]
    )
    model = ScriptedChat([*turns, *["done"] * 6])
    app = create_app(model, model_name=MODEL, tools=tools, execute_tools=True)
    with BackgroundServer(app) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "add 1 and 2"}],
            tool_choice=tool_choice,  # type: ignore[arg-type]
            parallel_tool_calls=parallel,
            stream=stream,
        )
        if stream:
            list(reply)
    assert "delete_everything" not in ran


def test_trace_export_is_openai_training_jsonl(tmp_path: Path) -> None:
    db = tmp_path / "trace.db"
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "w",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    model = ScriptedChat(
        [
            AssistantTurn(
                tool_calls=(ToolCall(name="get_weather", arguments={"city": "Oslo"}, id="call_1"),)
            ),
            "It is 3 °C in Oslo.",
        ]
    )
    app = create_app(model, model_name=MODEL, trace_db=db)
    with BackgroundServer(app) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        ask = [{"role": "user", "content": "Weather in Oslo?"}]
        first = client.chat.completions.create(
            model=MODEL,
            messages=ask,
            tools=[weather],
            parallel_tool_calls=False,
        )
        follow = [
            *ask,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": "call_1", "content": "3 °C"},
        ]
        list(
            client.chat.completions.create(
                model=MODEL,
                messages=follow,
                tools=[weather],
                stream=True,
            )
        )
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nope", messages=ask)
        with pytest.raises(openai.BadRequestError):  # the script is exhausted: a failed exchange
            client.chat.completions.create(model=MODEL, messages=ask)

    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    out = tmp_path / "train.jsonl"
    assert export_training_data(db, out) == 2
    first_example, second_example = (json.loads(line) for line in out.read_text().splitlines())
    assert first_example["tools"] == [weather]
    assert first_example["parallel_tool_calls"] is False
    assert first_example["messages"][0] == {"role": "user", "content": "Weather in Oslo?"}
    final = first_example["messages"][-1]
    assert final["role"] == "assistant" and final["content"] is None
    call = final["tool_calls"][0]
    assert call["id"] == "call_1" and json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    assert [m["role"] for m in second_example["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert second_example["messages"][-1] == {"role": "assistant", "content": "It is 3 °C in Oslo."}
    statuses = [e["status"] for e in read_exchanges(db)]
    assert statuses == [200, 200, 400]  # the 404 never reached the model


def test_export_reads_back_with_the_training_importer(tmp_path: Path) -> None:
    data = pytest.importorskip("fncall.train.data")
    db = tmp_path / "trace.db"
    model = ScriptedChat([AssistantTurn(tool_calls=(ToolCall(name="f", arguments={"x": 1}),))])
    tool = {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}},
        },
    }
    with BackgroundServer(create_app(model, model_name=MODEL, trace_db=db)) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], tools=[tool]
        )
    out = tmp_path / "train.jsonl"
    export_training_data(db, out)
    if not hasattr(data, "load_file"):
        pytest.skip("fncall.train.data has no load_file() yet")
    (example,) = data.load_file(out)
    assert example.messages[-1].tool_calls[0].name == "f"
    assert [t.name for t in example.tools] == ["f"]


def test_cli_refuses_public_bind_without_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FNCALL_API_KEY", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--model", "does-not-matter"]) == 2
    err = capsys.readouterr().err
    assert "without an API key" in err and "--api-key" in err


def test_cli_refuses_a_negative_prefix_cache_before_loading(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--prefix-cache-mb", "-1", "--model", "does-not-matter"]) == 2
    err = capsys.readouterr().err
    assert "--prefix-cache-mb must be a number >= 0, got -1.0" in err and "Traceback" not in err


def test_cli_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "t.db"
    model = ScriptedChat(["hello"])
    with BackgroundServer(create_app(model, model_name=MODEL, trace_db=db)) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    out = tmp_path / "out.jsonl"
    assert main(["serve", "--trace-db", str(db), "--export-training-data", str(out)]) == 0
    assert "wrote 1 example" in capsys.readouterr().out
    assert json.loads(out.read_text())["messages"][-1]["content"] == "hello"


def test_cli_wires_model_tools_and_key_without_printing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    import fncall.engine
    from fncall.engine.scripted import ScriptedEngine

    tools_file = tmp_path / "my_tools.py"
    tools_file.write_text(TOOLS_FILE)
    loaded: list[str] = []
    served: dict[str, object] = {}

    def fake_load_engine(name: str, **options: object) -> ScriptedEngine:
        loaded.append(name)
        return ScriptedEngine()

    monkeypatch.setattr(fncall.engine, "load_engine", fake_load_engine)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    secret = "sk-cli-secret-123"
    argv = [
        "serve",
        "--model",
        "tiny",
        "--host",
        "0.0.0.0",
        "--port",
        "8123",
        "--api-key",
        secret,
        "--tools",
        str(tools_file),
        "--execute-tools",
    ]
    assert main(argv) == 0
    assert loaded == ["tiny"]
    assert served["host"] == "0.0.0.0" and served["port"] == 8123
    state = served["app"].state.service  # type: ignore[attr-defined]
    assert [t.name for t in state.server_tools.tools] == ["add"] and state.server_tools.execute
    output = capsys.readouterr()
    assert "API key required" in output.err
    assert secret not in output.out + output.err
