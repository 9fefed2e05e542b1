"""The hostile-input suite (issue 20): hostile model output, hostile tools, hostile schemas.

Every parser and the validator get generated adversarial input (deep nesting, huge numbers,
lone surrogates, long repetitions of the characters that open and close things) and may only
raise fncall's own errors, within a time proportional to the input's size. Every hostile tool
of the catalogue runs through ``Executor``, ``Agent`` and ``fncall serve --execute-tools`` and
becomes an error the model reads. Hostile schemas go through import, validation, grammar
compilation and a request to ``fncall serve`` (a local pipeline, constrained).

``FNCALL_HOSTILE_REPORT=path.json`` writes the figures of a run (inputs tried by kind, foreign
exceptions escaped, 5xx responses, the worst time per input size) to that file.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fncall.constrain.build import build_constraint
from fncall.engine.scripted import ScriptedChat
from fncall.errors import ArgumentError, FncallError, ModelOutputError, SchemaError
from fncall.execute import Agent, aexecute, execute
from fncall.formats import get_format
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer
from fncall.serve.trace import read_exchanges
from fncall.tools.importers import tool_from_openai
from fncall.tools.validation import validate_arguments
from fncall.types import AssistantTurn, Tool, ToolCall, ToolResult

FORMATS = ["json", "hermes", "llama3", "pythonic", "pythonic-compact"]
SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)

# -- the figures of a run ------------------------------------------------------------------------

TRIED: Counter[str] = Counter()
FOREIGN: list[str] = []
SERVER_5XX: list[str] = []  # "what: status"
WORST_BY_SIZE: dict[int, float] = defaultdict(float)  # model output: chars (power of ten) -> s
WORST_BY_KIND: dict[str, float] = defaultdict(float)


def _bucket(size: int) -> int:
    return 10 ** max(2, len(str(max(size, 1))))


def _timed(
    kind: str,
    size: int | None,
    job: Callable[[], object],
    allowed: tuple[type[BaseException], ...],
) -> float:
    """Run ``job``; only ``allowed`` exceptions may leave it. Returns the seconds it took.
    ``size``: the model output's length, for the worst time per size."""
    TRIED[kind] += 1
    start = time.perf_counter()
    try:
        job()
    except allowed:
        pass
    except BaseException as exc:  # counted, then the test fails on it
        FOREIGN.append(f"{kind}: {type(exc).__name__}: {str(exc)[:200]}")
        raise
    elapsed = time.perf_counter() - start
    WORST_BY_KIND[kind] = max(WORST_BY_KIND[kind], elapsed)
    if size is not None:
        bucket = _bucket(size)
        WORST_BY_SIZE[bucket] = max(WORST_BY_SIZE[bucket], elapsed)
    return elapsed


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    path = os.environ.get("FNCALL_HOSTILE_REPORT")
    if path:
        figures = {
            "inputs_tried": dict(sorted(TRIED.items())),
            "inputs_tried_total": sum(TRIED.values()),
            "foreign_exceptions": FOREIGN,
            "server_5xx": SERVER_5XX,
            "worst_seconds_by_output_size": {
                f"< {k} chars": round(v, 4) for k, v in sorted(WORST_BY_SIZE.items())
            },
            "worst_seconds_by_kind": {k: round(v, 4) for k, v in sorted(WORST_BY_KIND.items())},
        }
        with open(path, "w") as out:
            json.dump(figures, out, indent=2)


# -- hostile model output ------------------------------------------------------------------------

PIECES = [
    "[", "]", "{", "}", "(", ")", '"', "'", "\\", ",", ":", "=", "-", "+", ".", " ", "\n",
    "x", "f(", "a=", "9" * 40, "1e999", "true", "null", "\ud800", "\udfff", "\x00", "é",
    "<tool_call>", "</tool_call>", "```json\n", "```", "<|python_tag|>",
    '{"name": "f", "arguments": ', '"arguments": "', "[f(a=", ")]", "x[",
]  # fmt: skip


@st.composite
def hostile_output(draw: st.DrawFn) -> tuple[str, str]:
    """``(kind, text)``: a kind of attack and a model output built for it."""
    kind = draw(st.sampled_from(["mix", "repetition", "nesting", "number", "unicode"]))
    unit = "".join(draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12)))
    if kind == "mix":
        text = "".join(draw(st.lists(st.sampled_from(PIECES), max_size=400)))
    elif kind == "repetition":
        text = unit * draw(st.integers(1, 20_000 // len(unit) + 1))
    elif kind == "nesting":
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a": ', "}"), ("[f(a=", ")]")]))
        depth = draw(st.integers(1, 3_000))
        closed = draw(st.booleans())
        text = opener * depth + unit + (closer * depth if closed else "")
    elif kind == "number":
        digits = "9" * draw(st.integers(4_000, 6_000))
        text = draw(
            st.sampled_from(
                [
                    f'[{{"name": "f", "arguments": {{"x": {digits}}}}}]',
                    f'<tool_call>{{"name": "f", "arguments": {{"x": -{digits}}}}}</tool_call>',
                    f'{{"name": "f", "parameters": {{"x": {digits}.5e1}}}}',
                    f"[f(x={digits})]",
                    f'[{{"name": "f", "arguments": "{{\\"x\\": {digits}}}"}}]',
                ]
            )
        )
    else:
        text = draw(
            st.text(
                st.characters(codec=None, categories=["Cs", "Co", "Cc", "Zs", "Ps", "Pe"]),
                max_size=300,
            )
        )
    return kind, text


@SETTINGS
@given(hostile_output())
def test_parsers_raise_only_model_output_errors_in_time_linear_in_the_input(
    case: tuple[str, str],
) -> None:
    kind, text = case
    for fmt in FORMATS:
        parse = get_format(fmt).parse
        elapsed = _timed(
            f"model output: {kind}", len(text), functools.partial(parse, text), (ModelOutputError,)
        )
        assert elapsed < 0.25 + 10e-6 * len(text), f"{fmt}: {len(text)} chars took {elapsed:.2f} s"


# -- hostile arguments and schemas ---------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec=None, categories=["Cs", "L", "N", "P", "Zs"]), max_size=50)
    | st.sampled_from(["a" * 40 + "!", "1" * 5_000 + "x", "9" * 5_000, "true", "[" * 100]),
    lambda inner: (
        st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=30), inner, max_size=10)
    ),
    max_leaves=40,
)

# The names the schemas below use, keys their patterns backtrack on, and any text.
KEYS = st.sampled_from(["x", "a", "a" * 40 + "!", "x" * 40]) | st.text(max_size=40)
REDOS = ["^(a|a)*$", "^(a+)+$", "(x+x+)+y", "^(\\w+\\s?)*$"]
HOSTILE_SCHEMAS: dict[str, dict[str, Any]] = {
    "redos pattern": {
        "type": "object",
        "properties": {"x": {"type": "string", "pattern": REDOS[0]}},
        "patternProperties": {REDOS[1]: {}},
        "additionalProperties": {"type": "string", "pattern": REDOS[3]},
    },
    "unique items": {
        "type": "object",
        "additionalProperties": {"type": "array", "uniqueItems": True},
    },
    "huge enum": {
        "type": "object",
        "properties": {"x": {"enum": [f"v{i}" for i in range(10_000)]}},
    },
    "numbers": {
        "type": "object",
        "additionalProperties": {"type": ["number", "integer"], "maximum": 1e308},
    },
    "remote ref": {"type": "object", "properties": {"x": {"$ref": "http://127.0.0.1:9/x.json"}}},
    "file ref": {"type": "object", "properties": {"x": {"$ref": "file:///etc/passwd"}}},
    "deep nesting": {},
    "unions": {
        "type": "object",
        "additionalProperties": {
            "anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "boolean"}}]
        },
    },
}
_deep: dict[str, Any] = {"type": "string"}
for _ in range(100):
    _deep = {"type": "object", "properties": {"a": _deep}}
HOSTILE_SCHEMAS["deep nesting"] = {"type": "object", "properties": {"x": _deep}}


@SETTINGS
@example("redos pattern", {"x": "a" * 40 + "!", "a" * 40 + "!": 1, "y": "a" * 40 + "!"})
@given(
    st.sampled_from(sorted(HOSTILE_SCHEMAS)),
    st.dictionaries(KEYS, JSON_VALUES, max_size=8),
)
def test_validation_raises_only_fncall_errors_in_bounded_time(
    name: str, arguments: dict[str, Any]
) -> None:
    tool = Tool(name="f", parameters=HOSTILE_SCHEMAS[name])
    size = len(repr(arguments))
    cpu = time.process_time()
    _timed(
        f"arguments against a hostile schema: {name}",
        None,
        lambda: validate_arguments(tool, arguments),
        (ArgumentError, SchemaError),
    )
    # 1 s of CPU for all the pattern matching, then linear
    assert time.process_time() - cpu < 1.5 + 10e-6 * size


@pytest.mark.parametrize("name", sorted(HOSTILE_SCHEMAS))
def test_hostile_schemas_import_and_compile_to_grammars(name: str) -> None:
    entry = {"type": "function", "function": {"name": "f", "parameters": HOSTILE_SCHEMAS[name]}}
    elapsed = _timed(
        f"schema import: {name}", None, lambda: tool_from_openai(entry), (SchemaError,)
    )
    assert elapsed < 1.0
    imported = tool_from_openai(entry)
    for fmt in FORMATS:
        syntax = get_format(fmt)
        elapsed = _timed(
            f"grammar compilation: {name}",
            None,
            functools.partial(build_constraint, [imported], syntax=syntax),
            (FncallError,),
        )
        assert elapsed < 5.0


@pytest.mark.parametrize("name", sorted(HOSTILE_SCHEMAS))
def test_hostile_schemas_in_a_request_never_make_a_5xx(name: str) -> None:
    """A client's tool definitions reach grammar compilation and the model's output is checked
    against them: the answer is the model's or a 4xx, never a server error."""
    import httpx2 as httpx

    from fncall.engine.scripted import ScriptedEngine
    from fncall.pipeline import LocalChat

    output = '[{"name": "f", "arguments": {"x": "' + "a" * 40 + '!"}}]'
    model = LocalChat(ScriptedEngine([output] * 2), format="json", constrained=True, judge=None)
    tools = [{"type": "function", "function": {"name": "f", "parameters": HOSTILE_SCHEMAS[name]}}]
    with BackgroundServer(create_app(model, model_name="m")) as server:
        for stream in (False, True):
            TRIED[f"hostile schema in a request: {name}"] += 1
            body = {"model": "m", "messages": [{"role": "user", "content": "go"}]}
            response = httpx.post(
                server.base_url + "/v1/chat/completions",
                json={**body, "tools": tools, "stream": stream},
                timeout=60,
            )
            if response.status_code >= 500:
                SERVER_5XX.append(f"hostile schema in a request, {name}: {response.status_code}")
            assert response.status_code < 500, response.text[:300]


# -- hostile tools -------------------------------------------------------------------------------


class _OwnBaseException(BaseException):
    pass


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("its __str__ fails too")


def _raiser(exc: BaseException, *, is_async: bool) -> Callable[..., Any]:
    if is_async:

        async def tool() -> None:
            await asyncio.sleep(0)
            raise exc

        return tool

    def sync_tool() -> None:
        raise exc

    return sync_tool


CATALOGUE: dict[str, BaseException] = {
    "SystemExit": SystemExit(3),
    "KeyboardInterrupt": KeyboardInterrupt(),
    "CancelledError": asyncio.CancelledError(),
    "GeneratorExit": GeneratorExit(),
    "own BaseException": _OwnBaseException("x"),
    "unprintable": _Unprintable(),
    "StopIteration": StopIteration(),
    "RecursionError": RecursionError("deep"),
    "MemoryError": MemoryError(),
}
HOSTILE_TOOLS = [
    Tool(
        name=f"{'async' if is_async else 'sync'}_{i}",
        parameters={"type": "object", "properties": {}},
        function=_raiser(exc, is_async=is_async),
    )
    for i, exc in enumerate(CATALOGUE.values())
    for is_async in (False, True)
]


def test_hostile_tools_become_errors_the_model_reads() -> None:
    calls = [ToolCall(name=t.name, arguments={}) for t in HOSTILE_TOOLS]
    for timeout in (5.0, None):
        TRIED["hostile tools: Executor"] += len(calls)
        start = time.perf_counter()
        results = execute(calls, HOSTILE_TOOLS, timeout=timeout)
        assert time.perf_counter() - start < 5.0
        assert all(r.error and "TimeoutError" not in r.error for r in results)
    TRIED["hostile tools: Executor"] += len(calls)
    results = asyncio.run(aexecute(calls, HOSTILE_TOOLS))
    assert all(r.error for r in results)


def test_hostile_tools_through_the_agent() -> None:
    turn = AssistantTurn(
        tool_calls=tuple(ToolCall(name=t.name, arguments={}) for t in HOSTILE_TOOLS)
    )
    run = Agent(ScriptedChat([turn, "done"]), HOSTILE_TOOLS).run("go")
    TRIED["hostile tools: Agent"] += len(HOSTILE_TOOLS)
    assert run.final == "done"
    assert len(run.tool_results) == len(HOSTILE_TOOLS) and all(r.error for r in run.tool_results)


@pytest.mark.parametrize("stream", [False, True])
def test_hostile_tools_through_the_server(stream: bool) -> None:
    script: list[AssistantTurn | str] = []
    for tool in HOSTILE_TOOLS:
        script += [AssistantTurn(tool_calls=(ToolCall(name=tool.name, arguments={}),)), "read it"]
    app = create_app(ScriptedChat(script), model_name="m", tools=HOSTILE_TOOLS, execute_tools=True)
    with BackgroundServer(app) as server:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0)
        for _ in HOSTILE_TOOLS:
            TRIED["hostile tools: fncall serve --execute-tools"] += 1
            ask: Any = [{"role": "user", "content": "go"}]
            try:
                if stream:
                    chunks = client.chat.completions.create(model="m", messages=ask, stream=True)
                    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                else:
                    reply = client.chat.completions.create(model="m", messages=ask)
                    content = reply.choices[0].message.content or ""
            except openai.APIStatusError as exc:
                SERVER_5XX.append(f"hostile tools: {exc.status_code}")
                raise
            assert content == "read it"


# -- hostile results and answers -----------------------------------------------------------------


class _Unshowable:
    def __str__(self) -> str:
        raise RuntimeError("its __str__ fails")

    __repr__ = __str__


def _hostile_results() -> dict[str, Any]:
    cycle: list[Any] = []
    cycle.append(cycle)
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    return {
        "a 5,001-digit integer": 10**5000,
        "one in a list": [10**5000],
        "an object whose __str__ raises": _Unshowable(),
        "lone surrogates": "x\udfffy\ud800",
        "lone surrogates in a dict": {"name\udcff": ["\ud800"]},
        "a cycle": cycle,
        "nested 100,000 deep": deep,
    }


HOSTILE_RESULTS = _hostile_results()


def _returning(value: Any) -> Callable[[], Any]:
    return lambda: value


RESULT_TOOLS = [
    Tool(
        name=f"result_{i}",
        parameters={"type": "object", "properties": {}},
        function=_returning(value),
    )
    for i, value in enumerate(HOSTILE_RESULTS.values())
]


@pytest.mark.parametrize("name", sorted(HOSTILE_RESULTS))
def test_hostile_results_render_as_text(name: str) -> None:
    """Issue 20, item 10: ``render`` raised on a result ``str`` or ``json`` cannot show; the text
    the model reads is always valid Unicode (lone surrogates become U+FFFD)."""
    TRIED["hostile results: render"] += 1
    text = ToolResult(call_id="c", name="f", content=HOSTILE_RESULTS[name]).render()
    text.encode("utf-8")
    assert ToolResult(call_id="c", name="f", error="x\ud800").render().encode("utf-8")


def test_hostile_results_through_the_agent() -> None:
    turn = AssistantTurn(
        tool_calls=tuple(ToolCall(name=t.name, arguments={}) for t in RESULT_TOOLS)
    )
    TRIED["hostile results: Agent"] += len(RESULT_TOOLS)
    run = Agent(ScriptedChat([turn, "done"]), RESULT_TOOLS).run("go")
    assert run.final == "done"
    assert len(run.tool_results) == len(RESULT_TOOLS)
    for message in run.messages:
        (message.content or "").encode("utf-8")


@pytest.mark.parametrize("stream", [False, True])
def test_hostile_results_and_answers_through_the_server(stream: bool, tmp_path: Any) -> None:
    """A tool result or a model answer the server cannot encode was a 500 (a cut stream when
    streaming), and the trace log dropped the exchange: every exchange is answered and logged."""
    import httpx2 as httpx

    script: list[AssistantTurn | str] = []
    for tool in RESULT_TOOLS:
        script += [AssistantTurn(tool_calls=(ToolCall(name=tool.name, arguments={}),)), "read it"]
    script.append("an answer with \ud800 a lone surrogate \udfff")
    db = tmp_path / "trace.db"
    app = create_app(
        ScriptedChat(script), model_name="m", tools=RESULT_TOOLS, execute_tools=True, trace_db=db
    )
    # json.dumps escapes the lone surrogate of the request as \ud800, as any client may
    body = {"model": "m", "messages": [{"role": "user", "content": "go \ud800"}], "stream": stream}
    with BackgroundServer(app) as server:
        for i in range(len(RESULT_TOOLS) + 1):
            TRIED["hostile results and answers: fncall serve --execute-tools"] += 1
            response = httpx.post(
                server.base_url + "/v1/chat/completions",
                content=json.dumps(body).encode(),
                headers={"content-type": "application/json"},
                timeout=30,
            )
            if response.status_code >= 500:
                SERVER_5XX.append(f"hostile result or answer {i}: {response.status_code}")
            assert response.status_code == 200, response.text[:300]
            text = response.text
            assert "server_error" not in text, text[-300:]
            if stream:
                assert text.endswith("data: [DONE]\n\n"), text[-300:]
                chunks = [json.loads(line[6:]) for line in text.split("\n") if line[6:7] == "{"]
                content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
            else:
                content = response.json()["choices"][0]["message"]["content"]
            last = "an answer with \ufffd a lone surrogate \ufffd"
            assert content == ("read it" if i < len(RESULT_TOOLS) else last)
    exchanges = list(read_exchanges(db))
    assert [e["status"] for e in exchanges] == [200] * (len(RESULT_TOOLS) + 1)


@pytest.mark.parametrize("stream", [False, True])
def test_a_lone_surrogate_answer_on_the_responses_route(stream: bool) -> None:
    import httpx2 as httpx

    app = create_app(ScriptedChat(["an answer with \ud800 a lone surrogate"]), model_name="m")
    body = {"model": "m", "input": "go \ud800", "stream": stream}
    with BackgroundServer(app) as server:
        TRIED["hostile answers: fncall serve /v1/responses"] += 1
        response = httpx.post(
            server.base_url + "/v1/responses",
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
            timeout=30,
        )
    if response.status_code >= 500:
        SERVER_5XX.append(f"hostile answer on /v1/responses: {response.status_code}")
    assert response.status_code == 200, response.text[:300]
    assert "an answer with \ufffd a lone surrogate" in response.text
    if stream:
        assert "event: response.completed" in response.text


# -- volume --------------------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RSS from /proc")
def test_distinct_tool_sets_cost_the_server_bounded_memory() -> None:
    """Issue 20, item 8: every request bringing new tools grew the server (300 tool sets: RSS
    73 -> 178 MB). Past the caches' sizes (64 grammars, 512 validators) memory stays flat."""
    import httpx2 as httpx

    from fncall.engine.scripted import ScriptedEngine
    from fncall.pipeline import LocalChat

    engine = ScriptedEngine(["It is sunny."] * 400)
    model = LocalChat(engine, format="json", constrained=True, judge=None)

    def ask(client: httpx.Client, base_url: str, i: int) -> None:
        tools = [
            {
                "type": "function",
                "function": {
                    "name": f"tool_{i}_{k}",
                    "parameters": {
                        "type": "object",
                        "properties": {f"p{j}_{i}": {"type": "string"} for j in range(4)},
                    },
                },
            }
            for k in range(8)
        ]
        body = {"model": "m", "messages": [{"role": "user", "content": "go"}], "tools": tools}
        response = client.post(base_url + "/v1/chat/completions", json=body, timeout=60)
        assert response.status_code == 200, response.text[:300]
        engine.requests.clear()  # the scripted engine's own record of every request

    with BackgroundServer(create_app(model, model_name="m")) as server, httpx.Client() as client:
        for i in range(100):  # past every cache's size
            ask(client, server.base_url, i)
        before = _rss_mb()
        for i in range(100, 400):
            ask(client, server.base_url, i)
        grown = _rss_mb() - before
    TRIED["distinct tool sets through fncall serve"] += 400
    assert grown < 8, f"300 more distinct tool sets grew the server by {grown:.0f} MB"


@pytest.mark.parametrize("stream", [False, True])
def test_lone_surrogates_in_a_request_reach_a_local_model_as_text(stream: bool) -> None:
    """Issue 20, item 10: a lone surrogate in a message or a tool's schema went into the prompt,
    which no tokenizer can encode: a 500, or an error at the end of a stream."""
    import httpx2 as httpx

    from fncall.engine.scripted import ScriptedEngine
    from fncall.pipeline import LocalChat

    engine = ScriptedEngine(["fine"])
    model = LocalChat(engine, format="json", constrained=True, judge=None)
    parameters = {
        "type": "object",
        "properties": {"x": {"type": "string", "description": "\udfff"}},
    }
    tools = [{"type": "function", "function": {"name": "f", "parameters": parameters}}]
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "go \ud800"}],
        "tools": tools,
        "stream": stream,
    }
    with BackgroundServer(create_app(model, model_name="m")) as server:
        TRIED["surrogates in a request: fncall serve over LocalChat"] += 1
        response = httpx.post(
            server.base_url + "/v1/chat/completions",
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
            timeout=30,
        )
    if response.status_code >= 500:
        SERVER_5XX.append(f"surrogates in a request: {response.status_code}")
    assert response.status_code == 200, response.text[:300]
    assert "server_error" not in response.text, response.text[-300:]
    (request,) = engine.requests
    assert "go \ufffd" in request.prompt and "\ud800" not in request.prompt


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_nested_deep_under_a_recursive_response_format(stream: bool) -> None:
    """Issue 20, item 10: an answer nested 300 deep under a recursive schema (items: $ref #)
    was a RecursionError while checking it, a 500; it is an unusable answer, fed back."""
    import httpx2 as httpx

    deep = "[" * 300 + "]" * 300
    model = ScriptedChat([deep, "[[]]"])
    schema = {"type": "array", "items": {"$ref": "#"}}
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "nest"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
        "stream": stream,
    }
    with BackgroundServer(create_app(model, model_name="m")) as server:
        TRIED["deep answers under a recursive response_format: fncall serve"] += 1
        response = httpx.post(server.base_url + "/v1/chat/completions", json=body, timeout=30)
    if response.status_code >= 500:
        SERVER_5XX.append(f"deep answer under a recursive schema: {response.status_code}")
    assert response.status_code == 200, response.text[:300]
    assert "server_error" not in response.text, response.text[-300:]
    if stream:
        assert response.text.endswith("data: [DONE]\n\n")
    else:
        assert response.json()["choices"][0]["message"]["content"] == "[[]]"
    assert model.remaining == 0  # the deep answer was fed back and answered again


def test_a_redos_pattern_in_a_response_format() -> None:
    """Issue 20, item 10: an answer that a response_format pattern backtracks on ran past the
    pattern limit outside any budget: PatternTimeout, a 500. It is an answer that cannot be
    accepted, fed back naming the pattern, within the 1 s budget."""
    import httpx2 as httpx

    model = ScriptedChat([json.dumps(["a" * 30 + "!"] * 3), '["a"]'])
    schema = {"type": "array", "items": {"type": "string", "pattern": "^(a|a)*$"}}
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    }
    with BackgroundServer(create_app(model, model_name="m")) as server:
        TRIED["a ReDoS pattern in a response_format: fncall serve"] += 1
        start = time.perf_counter()
        response = httpx.post(server.base_url + "/v1/chat/completions", json=body, timeout=60)
        elapsed = time.perf_counter() - start
    if response.status_code >= 500:
        SERVER_5XX.append(f"ReDoS pattern in a response_format: {response.status_code}")
    assert response.status_code == 200, response.text[:300]
    assert response.json()["choices"][0]["message"]["content"] == '["a"]'
    assert elapsed < 6.0  # one budget for the three strings, not 1 s each (loose: a busy machine)
