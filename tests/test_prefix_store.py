"""Saved KV states on disk (fncall.engine.prefix_store): the files themselves, the LRU finding
them, and on the real model a second process's first question reusing the first's prefixes
with the same greedy tokens as an engine that evaluates everything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import function_tool
from fncall.engine.prefix_cache import PrefixCache, StateCodec
from fncall.engine.prefix_store import STORE_ENV, PrefixStore, store_bytes
from fncall.errors import UserError

CODEC = StateCodec(encode=lambda state: state, decode=lambda data: (data, len(data)))


def test_a_written_state_is_found_by_its_longest_shared_prefix(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path, 10_000)
    assert store.write([1, 2, 3, 4], b"a" * 50) and store.write([1, 2, 9], b"b" * 50)
    again = PrefixStore(tmp_path, 10_000)  # another process: reads the folder's index
    entry, shared = again.best([1, 2, 3, 4, 5])
    assert entry is not None and shared == 4 and again.read(entry) == b"a" * 50
    entry, shared = again.best([1, 2, 9, 9])
    assert entry is not None and shared == 3 and again.read(entry) == b"b" * 50
    assert again.best([7]) == (None, 0)


def test_a_covered_state_is_not_written_and_an_extending_one_replaces(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path, 10_000)
    assert store.write([1, 2, 3], b"short")
    assert store.write([1, 2, 3, 4, 5], b"long")
    assert not store.write([1, 2, 3], b"short again")  # the long one serves it
    assert len(list(tmp_path.glob("*.kv"))) == 1
    entry, _ = PrefixStore(tmp_path, 10_000).best([1, 2, 3])
    assert entry is not None and list(entry.tokens) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign", "empty"])
def test_a_damaged_file_is_never_loaded_and_is_removed(tmp_path: Path, damage: str) -> None:
    PrefixStore(tmp_path, 10_000).write([5, 6, 7], b"state" * 20)
    (path,) = tmp_path.glob("*.kv")
    data = path.read_bytes()
    if damage == "flip":  # same length, one byte of the state changed: the digest catches it
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "truncate":
        path.write_bytes(data[:-10])
    elif damage == "foreign":
        path.write_bytes(b"not a state file at all")
    else:
        path.write_bytes(b"")
    store = PrefixStore(tmp_path, 10_000)
    entry, _ = store.best([5, 6, 7])
    if entry is not None:  # only a same-length change passes the index; reading refuses it
        assert store.read(entry) is None
        assert store.best([5, 6, 7]) == (None, 0)
    assert not path.exists()


def test_the_bound_holds_and_the_least_recently_used_file_goes(tmp_path: Path) -> None:
    store = PrefixStore(tmp_path, 400)
    assert store.write([1], b"x" * 100) and store.write([2], b"y" * 100)
    old = tmp_path.glob("*.kv")
    for path in old:  # make both old, then use [1]
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    entry, _ = store.best([1])
    assert entry is not None and store.read(entry) is not None
    assert store.write([3], b"z" * 100)  # three files of ~180 bytes exceed 400
    assert store.nbytes <= 400
    kept = {int(e.tokens[0]) for e in PrefixStore(tmp_path, 400)._entries()}
    assert kept == {1, 3}
    assert not store.write([4], b"w" * 500)  # alone above the bound


def test_the_bound_covers_every_folder_under_the_root(tmp_path: Path) -> None:
    """A rebuilt library gets a folder of its own; the old folder's files age out with it."""
    old, new = (
        PrefixStore(tmp_path / "old", 500, root=tmp_path),
        PrefixStore(tmp_path / "new", 500, root=tmp_path),
    )
    assert old.write([1], b"x" * 150)
    (stale,) = (tmp_path / "old").glob("*.kv")
    os.utime(stale, ns=(1_000_000_000, 1_000_000_000))
    leftover = tmp_path / "new" / ".abc.kv.123.456"  # a writer killed before its rename
    leftover.parent.mkdir()
    leftover.write_bytes(b"half")
    os.utime(leftover, ns=(1_000_000_000, 1_000_000_000))
    assert new.write([2], b"y" * 150) and new.write([3], b"z" * 150)
    assert not stale.exists() and not leftover.exists() and new.nbytes <= 500
    assert len(list((tmp_path / "new").glob("*.kv"))) == 2


def test_an_unwritable_folder_loses_nothing_but_the_copy(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    store = PrefixStore(blocker / "prefixes", 10_000)
    assert not store.write([1, 2], b"state")
    assert store.best([1, 2]) == (None, 0)


def test_sizes_from_the_argument_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORE_ENV, raising=False)
    assert store_bytes(None) == 256 * 1024 * 1024 and store_bytes(1) == 1024 * 1024
    monkeypatch.setenv(STORE_ENV, "0")
    assert store_bytes(None) == 0
    for bad in ("lots", "-5", "nan"):
        monkeypatch.setenv(STORE_ENV, bad)
        with pytest.raises(UserError, match=f"FNCALL_PREFIX_STORE_MB.*{bad}"):
            store_bytes(None)
    for value in (-1, "64", True):
        with pytest.raises(UserError, match="prefix_store_mb"):
            store_bytes(value)  # type: ignore[arg-type]


def test_the_cache_reads_a_stored_state_and_persists_only_new_ones(tmp_path: Path) -> None:
    first = PrefixCache(10_000, store=PrefixStore(tmp_path, 10_000), codec=CODEC)
    first.put([1, 2, 3, 4], b"tools", 5)
    assert first.persist() == 1 and first.persist() == 0
    second = PrefixCache(10_000, store=PrefixStore(tmp_path, 10_000), codec=CODEC)
    entry, shared = second.best([1, 2, 3, 4, 5])
    assert entry is not None and entry.state == b"tools" and entry.stored and shared == 4
    assert len(second) == 1 and second.persist() == 0  # read from disk: not written again
    # a live state that shares fewer tokens than the live context does is not read at all
    assert second.plan(np.array([1, 2, 3]), [1, 2, 3, 4]).load is None


WEATHER = function_tool(
    "get_weather",
    lambda city: {"city": city, "sky": "clear", "temperature_c": 21},
    description="Current weather in a city",
    city={"type": "string"},
)


@pytest.mark.model
def test_a_new_process_reuses_the_prefixes_with_the_same_tokens(tmp_path: Path) -> None:
    """A first engine answers a question and closes; a second one (as a new process would)
    answers another with the tool prefix and the judge's examples read from disk, and decodes
    what an engine without any saved state decodes. A damaged file is recomputed instead."""
    pytest.importorskip("llama_cpp")
    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.execute import chat
    from fncall.models import FAST_MODEL, install_model
    from fncall.pipeline import LocalChat

    path = install_model(FAST_MODEL, progress=False)

    def run(engine: LlamaCppEngine, question: str) -> list[tuple[str, int, int]]:
        log: list[tuple[str, int, int]] = []
        generate = engine.generate

        def record(prompt: str, **options):  # type: ignore[no-untyped-def]
            out = generate(prompt, **options)
            log.append((out.text, out.completion_tokens, out.cached_tokens))
            return out

        engine.generate = record  # type: ignore[method-assign]
        chat(question, [WEATHER], model=LocalChat(engine), max_tokens=32)
        engine.close()
        return log

    def stored(n_batch: int = 512) -> LlamaCppEngine:
        return LlamaCppEngine(
            path, n_ctx=2048, n_batch=n_batch, prefix_store_mb=64, prefix_store_dir=tmp_path
        )

    run(stored(), "Weather in Oslo?")
    files = list(tmp_path.rglob("*.kv"))
    assert files and sum(f.stat().st_size for f in files) <= 64 * 1024 * 1024
    warm = run(stored(), "Weather in Rome?")
    bare = LlamaCppEngine(path, n_ctx=2048, prefix_cache_mb=0, prefix_store_mb=0)
    cold = run(bare, "Weather in Rome?")
    assert [r[:2] for r in warm] == [r[:2] for r in cold]
    assert warm[0][2] > 100 and cold[0][2] == 0, (warm, cold)  # the tool prefix came from disk
    for file in tmp_path.rglob("*.kv"):  # damage every state: all are recomputed, none loaded
        data = file.read_bytes()
        file.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    damaged = run(stored(), "Weather in Rome?")
    assert [r[:2] for r in damaged] == [r[:2] for r in cold] and damaged[0][2] == 0
    # another configuration (here the batch size) never reads these states
    same, other = stored(), stored(n_batch=256)
    assert same.prefix_cache.store is not None and other.prefix_cache.store is not None
    assert same.prefix_cache.store.directory != other.prefix_cache.store.directory
    same.close()
    other.close()


@pytest.mark.model
def test_another_cpu_gets_another_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One library picks other kernels on another CPU (a home folder shared between machines):
    its states are not read there."""
    pytest.importorskip("llama_cpp")
    import fncall.engine.llama_cpp as llama_engine
    from fncall.models import install_model

    path = install_model("smollm2-135m", progress=False)

    def folder() -> Path:
        engine = llama_engine.LlamaCppEngine(
            path, n_ctx=512, prefix_store_mb=16, prefix_store_dir=tmp_path
        )
        assert engine.prefix_cache.store is not None
        engine.close()
        return engine.prefix_cache.store.directory

    here = folder()
    assert folder() == here
    monkeypatch.setattr(llama_engine, "_cpu_identity", lambda: "another CPU")
    assert folder() != here


@pytest.mark.model
def test_the_prefixes_are_written_when_the_interpreter_exits(tmp_path: Path) -> None:
    """No close(): a script that generates and ends leaves its states on disk."""
    pytest.importorskip("llama_cpp")
    script = (
        "from fncall.engine.llama_cpp import LlamaCppEngine\n"
        "from fncall.models import install_model\n"
        "engine = LlamaCppEngine(install_model('smollm2-135m', progress=False), n_ctx=512,\n"
        f"    prefix_store_mb=16, prefix_store_dir={str(tmp_path)!r})\n"
        "engine.generate('Tell me about the weather. ' * 20, max_tokens=4)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert len(list(tmp_path.rglob("*.kv"))) == 1


@pytest.mark.model
def test_an_engine_dropped_before_the_exit_writes_its_prefixes(tmp_path: Path) -> None:
    """The ``fncall chat`` command's engine is freed when its loop ends, before the exit hooks
    run: it writes its states as it goes."""
    pytest.importorskip("llama_cpp")
    import gc

    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.models import install_model

    def ask_once() -> None:
        engine = LlamaCppEngine(
            install_model("smollm2-135m", progress=False),
            n_ctx=512,
            prefix_store_mb=16,
            prefix_store_dir=tmp_path,
        )
        engine.generate("Tell me about the weather. " * 20, max_tokens=4)

    ask_once()
    gc.collect()
    assert len(list(tmp_path.rglob("*.kv"))) == 1


@pytest.mark.model
def test_a_bad_size_in_the_environment_is_a_clear_cli_error(tmp_path: Path) -> None:
    fncall = Path(sys.executable).with_name("fncall")
    done = subprocess.run(
        [str(fncall), "chat", "--model", "smollm2-135m"],
        input="hi\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, STORE_ENV: "lots"},
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "$FNCALL_PREFIX_STORE_MB must be a number of MiB >= 0" in done.stderr
    assert "'lots'" in done.stderr


@pytest.mark.model
@pytest.mark.slow
def test_a_restarted_server_finds_the_prefixes_of_the_one_before(tmp_path: Path) -> None:
    """``fncall serve`` stopped by SIGTERM (uvicorn raises it again after shutting down, which
    skips the interpreter's exit hooks) writes its prefixes on the way down; the next server's
    first request finds them (the official client reads ``cached_tokens``)."""
    pytest.importorskip("llama_cpp")
    import signal
    import time

    import httpx
    from openai import OpenAI

    from fncall.models import install_model, models_home
    from fncall.serve.testing import free_port

    install_model("smollm2-135m", progress=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(models_home())
    env = {**os.environ, "FNCALL_HOME": str(home), STORE_ENV: "16"}
    system = "You answer questions about the weather in the cities of the world, briefly. " * 6
    fncall = Path(sys.executable).with_name("fncall")

    def serve_once(question: str) -> int:
        port = free_port()
        server = subprocess.Popen(
            [str(fncall), "serve", "--model", "smollm2-135m", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.5)
            client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
            reply = client.chat.completions.create(
                model="smollm2-135m",
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": question},
                ],
                max_tokens=4,
            )
            details = reply.usage.prompt_tokens_details if reply.usage else None
            cached = details.cached_tokens if details else None
        finally:
            server.send_signal(signal.SIGTERM)
            _, stderr = server.communicate(timeout=60)
        assert b"Traceback" not in stderr, stderr.decode(errors="replace")[-2000:]
        assert cached is not None
        return cached

    assert serve_once("Hello?") == 0
    assert list((home / "prefixes").rglob("*.kv"))
    assert serve_once("What is the weather in Oslo?") > 80  # the system message, ~99 tokens


@pytest.mark.model
@pytest.mark.slow
def test_installing_a_model_keeps_its_judge_examples_on_disk(tmp_path: Path) -> None:
    """``fncall models install`` of a model it assembles now evaluates the judge's examples
    into the store; a later engine's first question reads them (and scores as one without)."""
    pytest.importorskip("llama_cpp")
    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.judge import default_judge
    from fncall.models import FAST_MODEL, get_model
    from fncall.types import Tool

    env = {**os.environ, "FNCALL_HOME": str(tmp_path), STORE_ENV: ""}
    fncall = Path(sys.executable).with_name("fncall")

    def install() -> str:
        done = subprocess.run(
            [str(fncall), "models", "install", FAST_MODEL, "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
        return done.stdout

    assert "judge's examples kept in the prefix store" in install()
    assert list((tmp_path / "prefixes").rglob("*.kv"))
    assert "prefix store" not in install()  # already assembled: nothing to do

    path = tmp_path / "models" / get_model(FAST_MODEL).filename
    judge = default_judge(FAST_MODEL)
    weather = Tool(name="get_weather", description="Current weather in a city.")
    warm = LlamaCppEngine(path, prefix_store_dir=tmp_path / "prefixes", prefix_store_mb=64)
    cold = LlamaCppEngine(path, prefix_store_mb=0)
    scores = [
        judge.score(engine, engine.chat_template, "Weather in Oslo?", weather)
        for engine in (warm, cold)
    ]
    assert warm.prefix_cache.store is not None and warm.prefix_cache.store.hits == 1
    assert scores[0] == pytest.approx(scores[1], abs=0.05)
    warm.close()
    cold.close()
