"""What the framework tests against ``fncall serve`` share (issue 21): the server on a loopback
port with the paths it was asked for, the scripted weather task, and a guard that fails a test
whose framework tried to reach anything but loopback (telemetry, tracing, a price list, a
tokenizer download).

Test modules import it as ``serve_frameworks_support`` (pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel, Field

from fncall.engine.base import ChatModel
from fncall.engine.scripted import ScriptedEngine
from fncall.pipeline import LocalChat
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer
from fncall.types import AssistantTurn, ToolCall

MODEL = "scripted-test"
ANSWER = "It is 21 C in Paris."
WEATHER_JSON = '{"city": "Paris", "celsius": 21}'
# litellm's response types are TypedDicts with ReadOnly items; pydantic warns as it reads them
LITELLM_TYPED_DICT_WARNING = "ignore:Item.* using the `ReadOnly` qualifier:UserWarning"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Weather(BaseModel):
    """The weather in a city."""

    city: str = Field(description="The city")
    celsius: int = Field(description="Temperature in degrees Celsius")


def weather_report(city: str) -> str:
    """What every framework's ``get_weather`` tool returns."""
    return json.dumps({"city": city, "celsius": 21})


def paris_call(
    name: str = "get_weather", call_id: str = "call_1", **arguments: Any
) -> AssistantTurn:
    """A turn that calls ``name`` (by default ``get_weather(city="Paris")``)."""
    return AssistantTurn(
        tool_calls=(ToolCall(name=name, arguments=arguments or {"city": "Paris"}, id=call_id),)
    )


def grammar_chat(*texts: str) -> tuple[LocalChat, ScriptedEngine]:
    """A ``LocalChat`` whose engine replays ``texts``, each checked byte by byte against the
    grammar it is generated under, so a structured-output test fails if no grammar applied."""
    engine = ScriptedEngine(list(texts))
    return LocalChat(engine, format="json", judge=None), engine


@dataclass
class Served:
    """A running server: ``base_url`` ends in ``/v1``; ``paths`` are the HTTP paths asked for."""

    base_url: str
    paths: list[str] = field(default_factory=list)


@contextmanager
def serve(model: ChatModel) -> Iterator[Served]:
    """``fncall serve``'s app around ``model`` on a free loopback port."""
    app = create_app(model, model_name=MODEL)
    paths: list[str] = []

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            paths.append(scope["path"])
        await app(scope, receive, send)

    with BackgroundServer(recording) as server:
        yield Served(base_url=server.base_url + "/v1", paths=paths)


def _is_loopback(host: Any) -> bool:
    if host is None or host == "localhost":
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@contextmanager
def loopback_only() -> Iterator[list[str]]:
    """Refuse every name lookup and connection that is not loopback, and list the hosts tried.

    A framework that swallows the error (a telemetry thread, a best-effort download) is still
    caught: the caller asserts the list is empty.
    """
    tried: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            tried.append(str(address[0]))
            raise OSError(f"this test reaches loopback only, not {address[0]}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            tried.append(str(host))
            raise socket.gaierror(f"this test reaches loopback only, not {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield tried


@pytest.fixture
def internet_blocked() -> Iterator[None]:
    """Use with ``pytestmark = pytest.mark.usefixtures("internet_blocked")``."""
    with loopback_only() as tried:
        yield
    assert tried == [], f"the framework tried to reach {sorted(set(tried))}"
