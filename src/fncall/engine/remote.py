"""``RemoteChat``: a ``ChatModel`` over any OpenAI-compatible endpoint (vLLM, SGLang, llama.cpp
server, a hosted API), through the official ``openai`` client (``pip install 'fncall[remote]'``).

Messages, tools, ``tool_choice`` and ``parallel_tool_calls`` are passed through; the server does
the templating, constraining and parsing. So are the sampling options, ``logit_bias`` (token ids
of the server's model) and the penalties included, and ``min_p``, which is not OpenAI's: it goes
in the request body beside them, where vLLM, SGLang and the llama.cpp server read it (OpenAI's
own API does not take it). Log-probabilities are not read back, so ``top_logprobs`` is refused.
Only the tools ``tool_choice`` selects are sent, and a single named tool becomes OpenAI's named
choice, because many servers do not implement ``allowed_tools``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from fncall.engine.base import ChatCapabilities, ChatDelta, ChatModel
from fncall.errors import ModelOutputError, UserError
from fncall.types import (
    AssistantTurn,
    Message,
    TokenUsage,
    Tool,
    ToolCall,
    ToolChoice,
    as_messages,
)

PASSED_OPTIONS = (
    "max_tokens",
    "temperature",
    "top_p",
    "seed",
    "stop",
    "response_format",
    "logit_bias",
    "presence_penalty",
    "frequency_penalty",
    "min_p",
)
# Fields the ``openai`` client has no keyword for: sent through its ``extra_body``, which puts
# them in the JSON body at the top level.
EXTENSION_OPTIONS = ("min_p",)


def _import_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise UserError(
            "RemoteChat needs the openai client: pip install 'fncall[remote]'"
        ) from None
    return openai


class RemoteChat(ChatModel):
    """Chat with a model served behind ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``).

    ``model`` is the server's model name. ``api_key`` defaults to a placeholder, as local servers
    need none. ``options`` (temperature, max_tokens, ...) are defaults for every request.
    It is an HTTP client: requests from several threads at once are fine.
    """

    capabilities = ChatCapabilities(thread_safe=True)

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 0,
        **options: Any,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise UserError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not isinstance(model, str) or not model:
            raise UserError(f"model must be the server's model name, got {model!r}")
        self._check_options(options)
        openai = _import_openai()
        self._openai = openai
        self.base_url = base_url
        self.model = model
        self.name = model
        self.options = dict(options)
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=timeout,
            max_retries=max_retries,
        )

    def __repr__(self) -> str:
        return f"RemoteChat({self.base_url!r}, model={self.model!r})"

    @staticmethod
    def _check_options(options: Mapping[str, Any]) -> None:
        if "top_logprobs" in options:
            raise UserError(
                "top_logprobs: RemoteChat does not return log-probabilities; accepted: leave it "
                "out (the local engines return them)"
            )
        unknown = sorted(set(options) - set(PASSED_OPTIONS))
        if unknown:
            raise UserError(
                f"unknown option(s) {unknown}; RemoteChat passes {', '.join(PASSED_OPTIONS)}"
            )

    def _request(
        self,
        messages: str | Sequence[Message | Mapping[str, Any]],
        tools: Iterable[Tool],
        tool_choice: ToolChoice | str | Mapping[str, Any] | None,
        parallel_tool_calls: bool,
        options: dict[str, Any],
    ) -> dict[str, Any]:
        self._check_options(options)
        tool_list = list(tools)
        choice = ToolChoice.parse(tool_choice, [t.name for t in tool_list])
        selected = choice.selected(tool_list)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_openai() for m in as_messages(messages)],
            **self.options,
            **options,
        }
        extra = {name: body.pop(name) for name in EXTENSION_OPTIONS if name in body}
        if extra:
            body["extra_body"] = extra
        if selected:
            body["tools"] = [tool.to_openai() for tool in selected]
            body["parallel_tool_calls"] = parallel_tool_calls
            if choice.mode == "required" and len(selected) == 1 and choice.allowed:
                body["tool_choice"] = {"type": "function", "function": {"name": selected[0].name}}
            else:
                body["tool_choice"] = choice.mode
        elif choice.mode == "required":
            raise UserError("tool_choice 'required' needs at least one tool, but none was given")
        return body

    def _call(self, body: dict[str, Any]) -> Any:
        openai = self._openai
        try:
            return self._client.chat.completions.create(**body)
        except openai.APIConnectionError as exc:
            raise UserError(
                f"cannot reach the OpenAI-compatible endpoint at {self.base_url} ({exc}); "
                "is the server running?"
            ) from None
        except openai.APIStatusError as exc:
            raise UserError(
                f"the endpoint at {self.base_url} answered HTTP {exc.status_code}: {exc.message}"
            ) from None

    def complete(
        self,
        messages: str | Sequence[Message | Mapping[str, Any]],
        tools: Iterable[Tool] = (),
        *,
        tool_choice: ToolChoice | str | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool = True,
        **options: Any,
    ) -> AssistantTurn:
        body = self._request(messages, tools, tool_choice, parallel_tool_calls, options)
        response = self._call(body)
        if not getattr(response, "choices", None):
            raise ModelOutputError("the endpoint returned no choices", raw=str(response))
        choice = response.choices[0]
        message = choice.message
        calls = tuple(
            _tool_call(call.id, call.function.name, call.function.arguments)
            for call in message.tool_calls or ()
        )
        finish = choice.finish_reason or ("tool_calls" if calls else "stop")
        return AssistantTurn(
            content=message.content or None,
            tool_calls=calls,
            raw=message.content or "",
            finish_reason=finish,
            **_usage(getattr(response, "usage", None)),
        )

    def stream(
        self,
        messages: str | Sequence[Message | Mapping[str, Any]],
        tools: Iterable[Tool] = (),
        *,
        tool_choice: ToolChoice | str | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool = True,
        **options: Any,
    ) -> Iterator[ChatDelta]:
        body = self._request(messages, tools, tool_choice, parallel_tool_calls, options)
        response = self._call({**body, "stream": True, "stream_options": {"include_usage": True}})
        return self._deltas(response)

    def _deltas(self, response: Any) -> Iterator[ChatDelta]:
        openai = self._openai
        try:
            for chunk in response:
                for choice in chunk.choices or ():
                    delta = choice.delta
                    if delta is not None and delta.content:
                        yield ChatDelta(content=delta.content)
                    for call in (delta.tool_calls or ()) if delta is not None else ():
                        function = call.function
                        yield ChatDelta(
                            index=call.index,
                            id=call.id,
                            name=function.name if function else None,
                            arguments=function.arguments if function else None,
                        )
                    if choice.finish_reason:
                        yield ChatDelta(finish_reason=choice.finish_reason)
                usage = getattr(chunk, "usage", None)
                if usage is not None:  # the last chunk, with stream_options.include_usage
                    yield ChatDelta(**_usage(usage))
        except openai.APIConnectionError as exc:
            raise UserError(f"lost the connection to {self.base_url} mid-stream ({exc})") from None


def _usage(usage: Any) -> TokenUsage:
    """An OpenAI ``usage`` object as token counts (absent or malformed parts count 0)."""

    def count(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    details = getattr(usage, "prompt_tokens_details", None)
    return TokenUsage(
        prompt_tokens=count(getattr(usage, "prompt_tokens", 0)),
        completion_tokens=count(getattr(usage, "completion_tokens", 0)),
        cached_tokens=count(getattr(details, "cached_tokens", 0)),
    )


def _tool_call(call_id: str | None, name: str, arguments: str | None) -> ToolCall:
    try:
        decoded = json.loads(arguments) if arguments and arguments.strip() else {}
    except json.JSONDecodeError as exc:
        raise ModelOutputError(
            f"call {name!r}: the endpoint returned arguments that are not JSON ({exc.msg})",
            raw=arguments or "",
        ) from None
    except (RecursionError, ValueError) as exc:  # nested too deep; an integer over 4,300 digits
        raise ModelOutputError(
            f"call {name!r}: the endpoint returned arguments that cannot be decoded "
            f"({type(exc).__name__}: {str(exc).split(';')[0]})",
            raw=arguments or "",
        ) from None
    if not isinstance(decoded, dict):
        raise ModelOutputError(
            f"call {name!r}: arguments must be a JSON object", raw=arguments or ""
        )
    return ToolCall(name=name, arguments=decoded, **({"id": call_id} if call_id else {}))
