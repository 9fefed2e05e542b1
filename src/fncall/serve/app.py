"""The OpenAI-compatible HTTP app: ``create_app(model, model_name=...)``.

Routes: ``POST /v1/chat/completions`` and ``POST /v1/responses`` (JSON or SSE; one model loop,
queue, API key and trace log behind both), ``GET /v1/models``, ``GET /v1/tools``
(fncall extension: the server's registered tools), ``GET /health``, and the playground page at
``/``. The server talks to the model only through the ``ChatModel`` protocol, so tests inject a
scripted model and the CLI injects a local one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fncall.engine.base import ChatModel, require_chat_model
from fncall.errors import UserError
from fncall.serve.embeddings import EmbeddingRequest, embedding_body, load_embedder, texts_of
from fncall.serve.errors import (
    APIError,
    error_body,
    exception_to_api_error,
    install_error_handlers,
)
from fncall.serve.execution import ServerTools
from fncall.serve.gate import ModelGate, model_slots
from fncall.serve.responses import ResponseRequest, to_responses_call
from fncall.serve.responses_wire import (
    ResponseEvents,
    output_items,
    request_echo,
    response_body,
    response_id,
    response_usage,
)
from fncall.serve.schemas import ChatCall, ChatCompletionRequest, to_chat_call
from fncall.serve.service import ChatService
from fncall.serve.trace import TraceLog
from fncall.serve.wire import JSONBody
from fncall.tools.retrieval import RetrievingToolSet, offered_tools
from fncall.types import Tool

log = logging.getLogger("fncall.serve")

DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_TOKENS_CAP = 4096
STATIC_DIR = Path(str(resources.files("fncall.serve") / "static"))


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with a 413 before the app reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            error_body(
                f"request body too large: the limit is {self.max_bytes} bytes",
                type="invalid_request_error",
                code="request_too_large",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse to serve on a non-loopback address without an API key."""
    if not is_loopback(host) and not api_key:
        raise UserError(
            f"refusing to listen on {host!r} without an API key: anyone who can reach this "
            "address could use the model (and run --execute-tools tools). Pass --api-key KEY "
            "(or set FNCALL_API_KEY), or bind to 127.0.0.1"
        )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def create_app(
    model: ChatModel,
    *,
    model_name: str,
    tools: Sequence[Tool] | RetrievingToolSet | None = None,
    api_key: str | None = None,
    execute_tools: bool = False,
    tool_timeout: float | None = 30.0,
    trace_db: str | Path | None = None,
    max_waiting: int = 32,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_tokens_cap: int = DEFAULT_MAX_TOKENS_CAP,
) -> FastAPI:
    """Build the app around one model.

    ``tools`` are the server's own tools: offered to the model when a request brings none, and
    run on the server when ``execute_tools`` is set. ``api_key`` (if set) is required as
    ``Authorization: Bearer <key>`` on every ``/v1`` route. ``max_waiting`` bounds the queue of
    requests waiting for the model (beyond it: 503). A ``RetrievingToolSet`` as ``tools`` (a
    large library: ``fncall serve --retrieve-k N``) offers a request that brings no tools of its
    own only the tools retrieved for it; every tool of the library can still run.
    """
    require_chat_model(model)
    retriever = tools if isinstance(tools, RetrievingToolSet) else None
    server_tools = ServerTools(list(tools or ()), execute=execute_tools, timeout=tool_timeout)
    trace = TraceLog(trace_db) if trace_db is not None else None
    gate = ModelGate(slots=model_slots(model), max_waiting=max_waiting)
    service = ChatService(
        model=model, model_name=model_name, gate=gate, server_tools=server_tools, trace=trace
    )
    key = api_key.encode() if api_key else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        gate.shutdown()
        if trace is not None:
            trace.close()
        # The saved prefixes go to disk for the next server (fncall.engine.prefix_store): here,
        # as uvicorn ends a SIGTERM by raising it again, which skips the interpreter's exit hooks.
        persist = getattr(getattr(model, "engine", None), "persist_prefixes", None)
        if callable(persist):
            await asyncio.to_thread(persist, 5.0)

    app = FastAPI(
        title="fncall",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        description="OpenAI-compatible chat completions with function calling.",
    )
    app.state.service = service
    install_error_handlers(app)

    async def require_key(request: Request) -> None:
        if key is None:
            return
        given = _bearer(request)
        if given is None:
            raise APIError(
                401,
                "You didn't provide an API key: send 'Authorization: Bearer <key>'",
                code="missing_api_key",
            )
        if not hmac.compare_digest(given.encode(), key):
            raise APIError(401, "Incorrect API key provided", code="invalid_api_key")

    def check_model(name: str) -> None:
        if name != model_name:
            raise APIError(
                404,
                f"The model {name!r} does not exist; this server serves {model_name!r}",
                param="model",
                code="model_not_found",
            )

    async def narrowed(call: ChatCall, brought_tools: bool) -> ChatCall:
        if retriever is None or brought_tools:
            return call
        # the query is embedded off the event loop (a few milliseconds of torch)
        tools = await asyncio.to_thread(offered_tools, retriever, call.messages, call.tool_choice)
        return dataclasses.replace(call, tools=tools)

    def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/v1/chat/completions", dependencies=[Depends(require_key)], response_model=None)
    async def chat_completions(
        body: ChatCompletionRequest, request: Request
    ) -> JSONBody | StreamingResponse:
        check_model(body.model)
        try:
            call = to_chat_call(
                body,
                default_tools=server_tools.tools,
                max_tokens_cap=max_tokens_cap,
            )
            call = await narrowed(call, bool(body.tools))
            if call.stream:
                return event_stream(await service.open_stream(call, request))
            return JSONBody(await service.complete(call, request))
        except Exception as exc:
            # answered here, as an error object; the ASGI stack never sees the exception
            raise exception_to_api_error(exc) from None

    @app.post("/v1/responses", dependencies=[Depends(require_key)], response_model=None)
    async def responses(body: ResponseRequest, request: Request) -> JSONBody | StreamingResponse:
        check_model(body.model)
        try:
            call = to_responses_call(
                body, default_tools=server_tools.tools, max_tokens_cap=max_tokens_cap
            )
            call = await narrowed(call, bool(body.tools))
            echo = request_echo(body)
            if call.stream:
                writer = ResponseEvents(model=model_name, echo=echo, logprobs=call.logprobs)
                return event_stream(await service.open_stream(call, request, writer))
            outcome = await service.answer(call, request)
            return JSONBody(
                response_body(
                    id=response_id(),
                    created_at=int(time.time()),
                    model=model_name,
                    echo=echo,
                    output=output_items(outcome.turn, logprobs=call.logprobs),
                    usage=response_usage(*outcome.usage),
                    finish_reason=outcome.turn.finish_reason or "stop",
                )
            )
        except Exception as exc:
            raise exception_to_api_error(exc) from None

    @app.post("/v1/embeddings", dependencies=[Depends(require_key)])
    async def embeddings(body: EmbeddingRequest) -> dict[str, Any]:
        texts = texts_of(body)
        embedder = await asyncio.to_thread(load_embedder)
        try:
            return await asyncio.to_thread(embedding_body, body, texts, embedder)
        except APIError:
            raise
        except Exception as exc:
            raise exception_to_api_error(exc) from None

    @app.get("/v1/models", dependencies=[Depends(require_key)])
    async def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": model_name, "object": "model", "created": started, "owned_by": "fncall"}
            ],
        }

    @app.get("/v1/models/{name}", dependencies=[Depends(require_key)])
    async def get_model(name: str) -> dict[str, Any]:
        if name != model_name:
            raise APIError(
                404, f"The model {name!r} does not exist", param="model", code="model_not_found"
            )
        return {"id": model_name, "object": "model", "created": started, "owned_by": "fncall"}

    @app.get("/v1/tools", dependencies=[Depends(require_key)])
    async def list_tools() -> dict[str, Any]:
        return {
            "object": "list",
            "execute": server_tools.execute,
            "data": [t.to_openai() for t in server_tools.tools],
        }

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": model_name,
            "busy": gate.busy,
            "queued": gate.waiting,
            "auth": key is not None,
        }

    @app.get("/", include_in_schema=False)
    async def playground() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        path = STATIC_DIR / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise APIError(404, f"Unknown static file {name!r}", code="not_found")
        return FileResponse(path)

    started = int(time.time())
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app
