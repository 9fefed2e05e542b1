"""OpenAI-style error objects and the exception handlers that produce them.

Every error leaves the server as ``{"error": {"message", "type", "param", "code"}}`` with the
matching status code. Messages name the bad field and what is accepted; stack traces stay in the
server log and never reach a response.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fncall.errors import FncallError, ModelOutputError, UserError
from fncall.serve.gate import QueueFullError
from fncall.serve.wire import JSONBody

log = logging.getLogger("fncall.serve")


class RequestError(UserError):
    """The request is malformed; ``param`` names the offending field (OpenAI's ``param``)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        self.param = param
        super().__init__(f"{param}: {message}" if param else message)


class APIError(Exception):
    """An error response with an explicit HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code


def error_body(
    message: str, *, type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(error: APIError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONBody(
        error_body(error.message, type=error.type, param=error.param, code=error.code),
        status_code=error.status,
        headers=headers,
    )


# How pydantic names the branch of a union in an error location: a type (``str``, ``int``,
# ``list[str]``, ``literal['a','b']``, ``function-after[...]``) or a model class (``TextPart``).
# Request fields are snake_case words, so ``stream`` or ``store`` is never mistaken for one.
_UNION_BRANCH = re.compile(r"str|int|float|bool|none|[A-Z]\w*|[\w-]+\[.*\]", re.DOTALL)


def _loc_to_param(loc: tuple[Any, ...]) -> str | None:
    parts = [p for p in loc if p != "body"]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _UNION_BRANCH.fullmatch(str(part)):
            out += f".{part}" if out else str(part)
    return out or None


def validation_error(exc: RequestValidationError) -> APIError:
    """Turn pydantic's 422 into OpenAI's 400 naming the first bad field and what it expects."""
    errors = exc.errors()
    if not errors:
        return APIError(400, "the request body is invalid")
    first = errors[0]
    if first.get("type") == "json_invalid":
        return APIError(400, "the request body is not valid JSON", code="invalid_json")
    param = _loc_to_param(tuple(first.get("loc", ())))
    if first.get("type") == "extra_forbidden":
        return APIError(
            400,
            f"Unrecognized request argument supplied: {param}",
            param=param,
            code="unknown_parameter",
        )
    if first.get("type") == "missing":
        return APIError(
            400,
            f"Missing required parameter: '{param}'",
            param=param,
            code="missing_required_parameter",
        )
    bad = first.get("input")
    shown = repr(bad)
    shown = shown if len(shown) <= 120 else shown[:120] + "..."
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return APIError(
        400,
        f"Invalid value for '{param}': {first.get('msg', 'invalid')}; got {shown}{more}",
        param=param,
        code="invalid_value",
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            error = APIError(404, f"Unknown path {request.url.path!r}", code="not_found")
        elif exc.status_code == 405:
            error = APIError(
                405,
                f"Method {request.method} is not allowed on {request.url.path!r}",
                code="method_not_allowed",
            )
        else:
            error = APIError(exc.status_code, str(exc.detail))
        return error_response(error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exception_to_api_error(exc))


# Request fields only the engine can check (a token id against its vocabulary); its message
# begins with the field's name ("logit_bias: token id ... is not in this model's vocabulary").
ENGINE_CHECKED_FIELDS = (
    "logit_bias",
    "presence_penalty",
    "frequency_penalty",
    "top_logprobs",
    "min_p",
)


def _engine_field(message: str) -> str | None:
    return next((f for f in ENGINE_CHECKED_FIELDS if message.startswith(f + ":")), None)


def exception_to_api_error(exc: BaseException, *, quiet: bool = False) -> APIError:
    """Map an exception from request handling or the model to a response, logging the details
    (unless ``quiet``: the caller has logged it already)."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, QueueFullError):
        return APIError(503, str(exc), type="server_error", code="queue_full")
    if isinstance(exc, ConnectionError):  # nobody reads this answer: the client has gone
        return APIError(499, "client closed the request", code="client_disconnected")
    if isinstance(exc, RequestError):
        return APIError(400, str(exc), param=exc.param, code="invalid_value")
    if isinstance(exc, UserError):
        return APIError(400, str(exc), param=_engine_field(str(exc)))
    if isinstance(exc, ModelOutputError):
        if not quiet:
            log.warning("model output unusable: %s", exc)
        return APIError(
            500,
            "the model produced an unusable answer; try again",
            type="server_error",
            code="model_output_error",
        )
    if isinstance(exc, FncallError):
        if not quiet:
            log.error("request failed: %s", exc)
        return APIError(500, f"{type(exc).__name__}: {exc}", type="server_error")
    if not quiet:
        log.error("unexpected error while serving a request", exc_info=exc)
    return APIError(
        500, "internal server error (details are in the server log)", type="server_error"
    )
