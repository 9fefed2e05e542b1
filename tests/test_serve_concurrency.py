"""One model, many clients: FIFO order, one request inside the model, bounded queue, and a
client that goes away frees its place (and stops generation)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx2 as httpx
import pytest

from fncall.engine.base import ChatCapabilities, ChatDelta, ChatModel
from fncall.errors import UserError
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer
from fncall.types import AssistantTurn, Message, Tool

MODEL = "slow"


class SlowChat(ChatModel):
    """Answers after ``delay`` seconds; records arrival order and how many are inside at once."""

    def __init__(self, delay: float, *, delta_delay: float = 0.05, deltas: int = 5) -> None:
        self.delay = delay
        self.delta_delay = delta_delay
        self.deltas = deltas
        self.order: list[str] = []
        self.active = 0
        self.max_active = 0
        self.stream_closed = threading.Event()
        self.deltas_sent = 0
        self._lock = threading.Lock()

    def _enter(self, messages: Sequence[Message]) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.order.append(messages[-1].content or "")

    def _leave(self) -> None:
        with self._lock:
            self.active -= 1

    def complete(
        self, messages: Sequence[Message], tools: Sequence[Tool] = (), **kwargs: Any
    ) -> AssistantTurn:
        self._enter(messages)
        try:
            time.sleep(self.delay)
            return AssistantTurn(content="done")
        finally:
            self._leave()

    def stream(
        self, messages: Sequence[Message], tools: Sequence[Tool] = (), **kwargs: Any
    ) -> Iterator[ChatDelta]:
        self._enter(messages)
        try:
            for _ in range(self.deltas):
                time.sleep(self.delta_delay)
                self.deltas_sent += 1
                yield ChatDelta(content="word ")
            yield ChatDelta(finish_reason="stop")
        finally:
            self._leave()
            self.stream_closed.set()


def body(text: str, stream: bool = False) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": stream}


def post_in_thread(
    url: str, payload: dict[str, Any], results: dict[str, Any], timeout: float = 20
) -> threading.Thread:
    def run() -> None:
        try:
            results[payload["messages"][0]["content"]] = httpx.post(
                url, json=payload, timeout=timeout
            )
        except httpx.HTTPError as exc:
            results[payload["messages"][0]["content"]] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_fifo_and_one_request_in_the_model() -> None:
    model = SlowChat(delay=0.15)
    app = create_app(model, model_name=MODEL)
    results: dict[str, Any] = {}
    with BackgroundServer(app) as server:
        url = server.base_url + "/v1/chat/completions"
        threads = []
        for i in range(5):
            threads.append(post_in_thread(url, body(f"r{i}"), results))
            # the next request arrives only once this one is in the model or queued
            wait_until(lambda i=i: len(model.order) + app.state.service.gate.waiting >= i + 1)
        for thread in threads:
            thread.join()
    assert model.order == [f"r{i}" for i in range(5)]
    assert model.max_active == 1
    assert all(r.status_code == 200 for r in results.values())


def test_a_batching_model_gets_as_many_requests_as_it_declares() -> None:
    class BatchingChat(SlowChat):
        capabilities = ChatCapabilities(thread_safe=True, max_batch_size=3)

    model = BatchingChat(delay=0.4)
    app = create_app(model, model_name=MODEL)
    results: dict[str, Any] = {}
    with BackgroundServer(app) as server:
        url = server.base_url + "/v1/chat/completions"
        threads = [post_in_thread(url, body(f"r{i}"), results) for i in range(5)]
        for thread in threads:
            thread.join()
    assert app.state.service.gate.slots == 3 and model.max_active == 3
    assert all(r.status_code == 200 for r in results.values())


def test_capabilities_are_checked() -> None:
    with pytest.raises(UserError, match="a model that batches requests must be thread_safe"):
        ChatCapabilities(max_batch_size=2)
    with pytest.raises(UserError, match="max_batch_size must be a positive integer, got 0"):
        ChatCapabilities(thread_safe=True, max_batch_size=0)

    class NotAModel:
        def complete(self, messages, tools=()): ...

    with pytest.raises(UserError, match="NotAModel lacks: stream, capabilities"):
        create_app(NotAModel(), model_name=MODEL)  # type: ignore[arg-type]


def test_full_queue_answers_503() -> None:
    model = SlowChat(delay=1.0)
    app = create_app(model, model_name=MODEL, max_waiting=1)
    results: dict[str, Any] = {}
    with BackgroundServer(app) as server:
        url = server.base_url + "/v1/chat/completions"
        gate = app.state.service.gate
        first = post_in_thread(url, body("first"), results)
        wait_until(lambda: model.active == 1)
        second = post_in_thread(url, body("second"), results)
        wait_until(lambda: gate.waiting == 1)
        refused = httpx.post(url, json=body("third"), timeout=5)
        first.join()
        second.join()
    assert refused.status_code == 503
    error = refused.json()["error"]
    assert error["code"] == "queue_full" and error["type"] == "server_error"
    assert results["first"].status_code == 200 and results["second"].status_code == 200
    assert model.order == ["first", "second"]


def test_client_leaving_the_queue_frees_its_place() -> None:
    model = SlowChat(delay=1.2)
    app = create_app(model, model_name=MODEL, max_waiting=1)
    results: dict[str, Any] = {}
    with BackgroundServer(app) as server:
        url = server.base_url + "/v1/chat/completions"
        gate = app.state.service.gate
        first = post_in_thread(url, body("first"), results)
        wait_until(lambda: model.active == 1)
        impatient = post_in_thread(url, body("impatient"), results, timeout=0.3)
        impatient.join()
        assert isinstance(results["impatient"], httpx.TimeoutException)
        wait_until(lambda: gate.waiting == 0, timeout=2)
        third = post_in_thread(url, body("third"), results)
        first.join()
        third.join()
    assert results["third"].status_code == 200
    assert model.order == ["first", "third"]  # the impatient request never reached the model


@pytest.mark.parametrize("read_chunks", [0, 2])
def test_disconnect_mid_stream_stops_generation_and_frees_the_slot(read_chunks: int) -> None:
    model = SlowChat(delay=0.0, delta_delay=0.1, deltas=200)  # 20 s if nobody stopped it
    app = create_app(model, model_name=MODEL)
    with BackgroundServer(app) as server:
        url = server.base_url + "/v1/chat/completions"
        with httpx.stream("POST", url, json=body("stream me", stream=True), timeout=10) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            seen = 0
            while seen < read_chunks:
                if next(lines).startswith("data: "):
                    seen += 1
        started = time.monotonic()
        assert model.stream_closed.wait(timeout=3), "generation went on after the disconnect"
        stopped_after = time.monotonic() - started
        wait_until(lambda: app.state.service.gate.busy == 0, timeout=2)
        next_reply = httpx.post(url, json=body("next"), timeout=5)
    assert next_reply.status_code == 200
    assert model.deltas_sent < 50 and stopped_after < 3
