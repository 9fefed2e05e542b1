"""The request body of ``POST /v1/chat/completions`` as pydantic models, with limits.

The models mirror OpenAI's request shape closely enough that the official clients validate
against them, and forbid unknown fields (OpenAI answers those with a 400 too). Conversion to
fncall's own types (``Message``, ``Tool``, ``ToolChoice``) happens in ``to_chat_call``; every
problem it finds is a ``UserError`` naming the field, which the app turns into a 400.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fncall.errors import SchemaError, UserError
from fncall.serve.errors import RequestError
from fncall.serve.structured import ResponseSchema
from fncall.tools.repair import repair_parameters
from fncall.tools.validation import schema_validator
from fncall.types import Message, Tool, ToolChoice

MAX_MESSAGES = 512
MAX_TOOLS = 128
MAX_STOP = 4
TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class MediaPart(BaseModel):
    """An image, audio or file content part: recognised so that the answer can say this model
    reads text only (rather than that the part is not a string)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["image_url", "input_audio", "file"]


MEDIA_KINDS = {"image_url": "images", "input_audio": "audio", "file": "files"}


class FunctionCallIn(_Strict):
    name: str = Field(min_length=1, max_length=64)
    arguments: str | dict[str, Any] = ""


class ToolCallIn(_Strict):
    """A call on an assistant message. ``index``, which a call assembled from streamed chunks
    keeps (LlamaIndex and litellm send it back), is accepted and dropped: order is the list's."""

    id: str = Field(default="", max_length=128)
    type: Literal["function"] = "function"
    function: FunctionCallIn
    index: int | None = None


class ChatMessageIn(_Strict):
    """A message. The fields the OpenAI SDK puts on an assistant message it returned
    (``message.model_dump()``) are accepted back: ``annotations`` (citations) and
    ``reasoning_content`` are dropped (the chat template shows neither), ``audio`` and the legacy
    ``function_call`` only when null."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart | MediaPart] | None = None
    name: str | None = Field(default=None, max_length=64)
    tool_calls: list[ToolCallIn] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_call_id: str | None = Field(default=None, max_length=128)
    refusal: str | None = None
    annotations: list[dict[str, Any]] | None = None
    audio: dict[str, Any] | None = None
    function_call: dict[str, Any] | None = None
    reasoning_content: str | None = None


class FunctionDefinition(_Strict):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str = Field(default="", max_length=8192)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class ToolDefinition(_Strict):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(_Strict):
    name: str = Field(min_length=1, max_length=64)


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


class AllowedToolRef(_Strict):
    type: Literal["function"] = "function"
    function: NamedFunction


class AllowedTools(_Strict):
    mode: Literal["auto", "required"]
    tools: list[AllowedToolRef] = Field(min_length=1, max_length=MAX_TOOLS)


class AllowedToolsChoice(_Strict):
    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


class JsonSchemaFormat(_Strict):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(_Strict):
    include_usage: bool = False
    include_obfuscation: bool | None = None  # no padding field is sent either way


class ChatCompletionRequest(_Strict):
    """The accepted subset of OpenAI's chat completion request."""

    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    tools: list[ToolDefinition] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: (
        Literal["none", "auto", "required"] | NamedToolChoice | AllowedToolsChoice | None
    ) = None
    parallel_tool_calls: bool | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    # Not OpenAI's: vLLM's, SGLang's and the llama.cpp server's (clients send it in extra_body).
    min_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    stop: str | Annotated[list[str], Field(max_length=MAX_STOP)] | None = None
    seed: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    response_format: ResponseFormat | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=1)] | None = None
    # Honoured by the local engines (``sampling_fields``); a model that cannot refuses them.
    presence_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = Field(
        default=None, max_length=1024
    )
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    # Refused unless text only (see _refuse_unless_neutral).
    modalities: list[Literal["text", "audio"]] | None = Field(default=None, max_length=2)
    # Accepted and ignored: none of them can change the answer (see IGNORED_FIELDS).
    store: bool | None = None
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    prompt_cache_key: str | None = Field(default=None, max_length=1024)
    safety_identifier: str | None = Field(default=None, max_length=256)
    user: str | None = Field(default=None, max_length=256)


IGNORED_FIELDS = {
    "store": "nothing is stored: every request is answered on its own",
    "metadata": "nothing is stored to attach it to",
    "service_tier": "one tier: the server's queue",
    "reasoning_effort": "the model does not reason before answering",
    "verbosity": "a hint for reasoning models; the answer's length follows max_tokens",
    "prompt_cache_key": "the prefix cache matches prompts by their tokens, for every request",
    "safety_identifier": "informational",
    "user": "informational",
    "stream_options.include_obfuscation": "no padding is sent; the stream is not obfuscated",
}
"""Fields accepted and ignored, and why (the README's table is written from this)."""


def _refuse_unless_neutral(body: ChatCompletionRequest) -> None:
    """Audio output is not implemented: text only is accepted, anything else refused rather
    than silently ignored."""
    if any(m != "text" for m in body.modalities or ()):
        raise RequestError(
            f'{body.modalities!r} is not supported by this model; accepted: ["text"] '
            "(or leave it out)",
            param="modalities",
        )


def sampling_fields(
    *,
    logit_bias: dict[str, float] | None,
    presence_penalty: float | None,
    frequency_penalty: float | None,
    logprobs: bool,
    top_logprobs: int | None,
) -> dict[str, Any]:
    """The model options of OpenAI's ``logit_bias``, penalties and log-probability fields.

    Neutral values are not passed on (a model that cannot honour a field would refuse it);
    ``logprobs: true`` becomes the option ``top_logprobs`` (0 when not given). ``logit_bias``
    keys are token ids written as strings (JSON object keys); whether they are in the model's
    vocabulary is the engine's check."""
    options: dict[str, Any] = {}
    if logit_bias:
        bias = {}
        for key, value in logit_bias.items():
            token = key.strip()
            if not token.isascii() or not token.isdigit():
                raise RequestError(
                    f"keys must be token ids (non-negative integers written as strings, e.g. "
                    f'"1234"), got {key!r}',
                    param="logit_bias",
                )
            bias[int(token)] = value
        options["logit_bias"] = bias
    if presence_penalty:
        options["presence_penalty"] = presence_penalty
    if frequency_penalty:
        options["frequency_penalty"] = frequency_penalty
    if top_logprobs and not logprobs:
        raise RequestError(
            f"{top_logprobs} needs logprobs: true; accepted: 0 (or leave it out) without it",
            param="top_logprobs",
        )
    if logprobs:
        options["top_logprobs"] = top_logprobs or 0
    return options


@dataclass(kw_only=True)
class ChatCall:
    """A validated request in fncall's own types: what the model is called with."""

    messages: list[Message]
    tools: list[Tool]
    tool_choice: ToolChoice | None
    parallel_tool_calls: bool
    options: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False
    response_schema: ResponseSchema | None = None  # the answer is JSON under this schema
    logprobs: bool = False  # answer with the log-probabilities of the content tokens


def _message(index: int, raw: ChatMessageIn) -> Message:
    for position, part in enumerate(raw.content if isinstance(raw.content, list) else ()):
        if isinstance(part, MediaPart):
            raise RequestError(
                f"{MEDIA_KINDS[part.type]} ({json.dumps(part.type)} parts) are not supported by "
                'this model: it reads text; send {"type": "text", "text": ...} parts',
                param=f"messages[{index}].content[{position}]",
            )
    for name in ("audio", "function_call"):
        if getattr(raw, name) is not None:
            raise RequestError(
                f"{name} is not supported by this model; accepted: null "
                "(calls are sent as tool_calls)",
                param=f"messages[{index}].{name}",
            )
    data = raw.model_dump(exclude_none=True)
    if data["role"] == "developer":  # OpenAI's newer name for the system role
        data["role"] = "system"
    if raw.role != "assistant" and raw.tool_calls:
        raise RequestError(
            "only assistant messages carry tool_calls", param=f"messages[{index}].tool_calls"
        )
    if raw.role == "tool" and not raw.tool_call_id:
        raise RequestError(
            "a tool message needs the id of the call it answers",
            param=f"messages[{index}].tool_call_id",
        )
    if raw.role != "assistant" and raw.content is None:
        raise RequestError(
            f"a {raw.role} message needs content", param=f"messages[{index}].content"
        )
    try:
        return Message.from_openai(data)
    except UserError as exc:
        raise RequestError(str(exc), param=f"messages[{index}]") from None


def function_tool(function: FunctionDefinition, *, param: str) -> Tool:
    """A request's function as a ``Tool``; ``param`` names its parameters field for errors."""
    schema = function.parameters
    if schema.get("type", "object") != "object":
        raise RequestError(
            f"must be a JSON Schema of type 'object', got type {schema.get('type')!r}",
            param=param,
        )
    try:
        # The same check (and cached validator) as the calls will meet; a schema nested too deep
        # for jsonschema's recursion is refused here, not a 500.
        schema_validator(schema, tool_name=function.name)
    except SchemaError as exc:
        raise RequestError(f"not a valid JSON Schema: {exc}", param=param) from None
    # Repaired as imported tools are (fncall.tools.repair), silently: the schema is the
    # client's, and the grammar and the validator must read it the same way.
    repaired = repair_parameters(schema, tool_name=function.name, warn=False)
    return Tool(
        name=function.name,
        description=function.description,
        parameters=dict(repaired),
        strict=bool(function.strict),
    )


def _check_call_ids(messages: list[Message]) -> None:
    """Every tool message must answer a call made earlier in the conversation."""
    seen: set[str] = set()
    for index, message in enumerate(messages):
        seen.update(call.id for call in message.tool_calls)
        if message.role == "tool" and message.tool_call_id not in seen:
            raise RequestError(
                f"{message.tool_call_id!r} answers no earlier assistant tool call; "
                f"known ids: {sorted(seen) or 'none'}",
                param=f"messages[{index}].tool_call_id",
            )


def check_unique_names(tools: list[Tool]) -> None:
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise RequestError(
            f"each function name must be unique; repeated: {duplicates}", param="tools"
        )


def parse_tool_choice(raw_choice: Any, tools: list[Tool]) -> ToolChoice | None:
    """``tool_choice`` in chat completion shape (or ``None``) against the offered tools."""
    if raw_choice is None:
        return None
    if not tools and raw_choice not in ("none", "auto"):
        raise RequestError("a tool_choice that requires a call needs 'tools'", param="tool_choice")
    try:
        return ToolChoice.parse(raw_choice, [t.name for t in tools])
    except UserError as exc:
        raise RequestError(str(exc), param="tool_choice") from None


def sampling_options(
    *,
    max_tokens: int | None,
    max_tokens_cap: int,
    max_tokens_param: str,
    temperature: float | None,
    top_p: float | None,
    min_p: float | None = None,
) -> dict[str, Any]:
    """The model options of a request's token limit and sampling fields."""
    options: dict[str, Any] = {}
    if max_tokens is not None:
        if max_tokens > max_tokens_cap:
            raise RequestError(
                f"{max_tokens} exceeds this server's cap of {max_tokens_cap}",
                param=max_tokens_param,
            )
        options["max_tokens"] = max_tokens
    if temperature is not None:
        options["temperature"] = temperature
    # top_p=1 keeps every token, and greedy decoding (temperature 0) takes the likeliest token
    # whatever top_p keeps: then top_p cannot change the answer and the model is not asked for
    # it (a model that does not sample, such as LocalChat, would refuse it).
    if top_p is not None and top_p < 1 and temperature != 0:
        options["top_p"] = top_p
    # Likewise min_p=0 (off), and greedy decoding always keeps the likeliest token.
    if min_p and temperature != 0:
        options["min_p"] = min_p
    return options


def to_chat_call(
    body: ChatCompletionRequest,
    *,
    default_tools: list[Tool],
    max_tokens_cap: int,
) -> ChatCall:
    """Validate a request beyond its shape and convert it to fncall's types."""
    messages = [_message(i, m) for i, m in enumerate(body.messages)]
    _check_call_ids(messages)
    tools = [
        function_tool(t.function, param=f"tools[{i}].function.parameters")
        for i, t in enumerate(body.tools or [])
    ] or list(default_tools)
    check_unique_names(tools)
    raw_choice: Any = body.tool_choice
    if isinstance(raw_choice, BaseModel):
        raw_choice = raw_choice.model_dump()
    tool_choice = parse_tool_choice(raw_choice, tools)

    _refuse_unless_neutral(body)
    if body.max_tokens is not None and body.max_completion_tokens is not None:
        raise RequestError("give max_tokens or max_completion_tokens, not both", param="max_tokens")
    options = sampling_options(
        max_tokens=body.max_completion_tokens or body.max_tokens,
        max_tokens_cap=max_tokens_cap,
        max_tokens_param="max_tokens",
        temperature=body.temperature,
        top_p=body.top_p,
        min_p=body.min_p,
    )
    options.update(
        sampling_fields(
            logit_bias=body.logit_bias,
            presence_penalty=body.presence_penalty,
            frequency_penalty=body.frequency_penalty,
            logprobs=bool(body.logprobs),
            top_logprobs=body.top_logprobs,
        )
    )
    if body.seed is not None:
        options["seed"] = body.seed
    if body.stop is not None:
        stop = [body.stop] if isinstance(body.stop, str) else list(body.stop)
        if any(not s for s in stop):
            raise RequestError("stop sequences must be non-empty strings", param="stop")
        options["stop"] = stop
    return ChatCall(
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        options=options,
        stream=bool(body.stream),
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        response_schema=_response_schema(body.response_format),
        logprobs=bool(body.logprobs),
    )


def _response_schema(fmt: ResponseFormat | None) -> ResponseSchema | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return ResponseSchema(name="json_object", schema=None, param="response_format")
    if fmt.json_schema is None or fmt.json_schema.schema_ is None:
        raise RequestError(
            "a json_schema format needs a 'schema'", param="response_format.json_schema"
        )
    return ResponseSchema(
        name=fmt.json_schema.name,
        schema=fmt.json_schema.schema_,
        strict=bool(fmt.json_schema.strict),
        description=fmt.json_schema.description,
        param="response_format.json_schema.schema",
    )
