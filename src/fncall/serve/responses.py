"""The request body of ``POST /v1/responses`` (OpenAI's Responses API), and its conversion to
the ``ChatCall`` that chat completions use: one model loop, queue, limit set and trace log
behind both routes.

Input items become messages: a message item a message; a run of ``function_call`` items the
``tool_calls`` of one assistant message (joined to the assistant message item before them, as
the server's own output lists them); a ``function_call_output`` a tool message. ``instructions``
is the system message, first. The server is stateless: nothing is stored (``store`` is
accepted and ignored), so ``previous_response_id`` and ``conversation`` are refused with a 400
naming them; a client sends the whole conversation, as with ``store: false``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from fncall.serve.errors import RequestError
from fncall.serve.schemas import (
    MAX_MESSAGES,
    MAX_TOOLS,
    TOOL_NAME_PATTERN,
    ChatCall,
    FunctionDefinition,
    check_unique_names,
    function_tool,
    parse_tool_choice,
    sampling_options,
)
from fncall.serve.structured import ResponseSchema
from fncall.types import Message, Tool, ToolCall


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextContent(_Strict):
    type: Literal["input_text", "output_text"]
    text: str
    annotations: list[dict[str, Any]] | None = None  # on output_text the SDK returned
    logprobs: list[dict[str, Any]] | None = None


class RefusalContent(_Strict):
    type: Literal["refusal"]
    refusal: str


class MediaContent(_Open):
    """Recognised so that the answer can say this model reads text only."""

    type: Literal["input_image", "input_file", "input_audio"]


ContentPart = TextContent | RefusalContent | MediaContent


class MessageItem(_Strict):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | Annotated[list[ContentPart], Field(max_length=MAX_MESSAGES)]
    id: str | None = Field(default=None, max_length=128)
    status: str | None = None
    phase: str | None = None  # on an assistant message the SDK returned


class FunctionCallItem(_Strict):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=64)
    arguments: str
    id: str | None = Field(default=None, max_length=128)
    status: str | None = None
    # on a call the SDK returned (model_dump()), always null here
    async_: None = None
    caller: None = None
    namespace: None = None


class FunctionCallOutputItem(_Strict):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1, max_length=128)
    output: str | list[ContentPart]
    id: str | None = Field(default=None, max_length=128)
    status: str | None = None


class OtherItem(_Open):
    """Any other item type (reasoning, built-in tool calls): recognised to be refused by name."""

    type: str


def _item_kind(value: Any) -> str:
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "")
    if not isinstance(kind, str):
        return "OtherItem"  # which then names the bad type
    return {
        "message": "MessageItem",
        "function_call": "FunctionCallItem",
        "function_call_output": "FunctionCallOutputItem",
    }.get(kind, "OtherItem")


InputItem = Annotated[
    Annotated[MessageItem, Tag("MessageItem")]
    | Annotated[FunctionCallItem, Tag("FunctionCallItem")]
    | Annotated[FunctionCallOutputItem, Tag("FunctionCallOutputItem")]
    | Annotated[OtherItem, Tag("OtherItem")],
    Discriminator(_item_kind),
]


class FunctionTool(_Strict):
    type: Literal["function"]
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=8192)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class OtherTool(_Open):
    type: str


def _tool_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "FunctionTool" if isinstance(kind, str) and kind == "function" else "OtherTool"


ToolIn = Annotated[
    Annotated[FunctionTool, Tag("FunctionTool")] | Annotated[OtherTool, Tag("OtherTool")],
    Discriminator(_tool_kind),
]


class FunctionChoice(_Strict):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64)


class AllowedFunction(_Strict):
    type: Literal["function"] = "function"
    name: str = Field(min_length=1, max_length=64)


class AllowedToolsChoice(_Strict):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: list[AllowedFunction] = Field(min_length=1, max_length=MAX_TOOLS)


class TextFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = Field(default=None, pattern=TOOL_NAME_PATTERN)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextOptions(_Strict):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None  # a hint; ignored


class ReasoningOptions(_Strict):
    """Accepted and ignored: the model does not reason before answering."""

    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class ResponseStreamOptions(_Strict):
    include_obfuscation: bool | None = None  # no padding field is sent either way


class ResponseRequest(_Strict):
    """The accepted subset of OpenAI's ``POST /v1/responses`` body."""

    model: str = Field(min_length=1, max_length=256)
    input: str | Annotated[list[InputItem], Field(max_length=MAX_MESSAGES)]
    instructions: str | None = None
    tools: list[ToolIn] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: (
        Literal["none", "auto", "required"] | FunctionChoice | AllowedToolsChoice | None
    ) = None
    parallel_tool_calls: bool | None = None
    text: TextOptions | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    stream: bool | None = False
    stream_options: ResponseStreamOptions | None = None
    # Refused unless absent or neutral: honouring them would need what this server lacks.
    previous_response_id: str | None = Field(default=None, max_length=256)
    conversation: str | dict[str, Any] | None = None
    background: bool | None = None
    # Honoured: the output_text parts carry log-probabilities (see ``LOGPROBS_INCLUDE``).
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    # Accepted and ignored (see IGNORED_RESPONSE_FIELDS).
    store: bool | None = None
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    user: str | None = Field(default=None, max_length=256)
    safety_identifier: str | None = Field(default=None, max_length=256)
    prompt_cache_key: str | None = Field(default=None, max_length=1024)
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    reasoning: ReasoningOptions | None = None
    truncation: Literal["auto", "disabled"] | None = None
    include: list[str] | None = Field(default=None, max_length=16)
    max_tool_calls: Annotated[int, Field(ge=1)] | None = None


LOGPROBS_INCLUDE = "message.output_text.logprobs"
"""The ``include`` entry that asks for the output_text parts' log-probabilities (OpenAI's); a
``top_logprobs`` > 0 asks for them too."""

IGNORED_RESPONSE_FIELDS = {
    "store": "nothing is stored: send the whole conversation as input",
    "metadata": "nothing is stored to attach it to",
    "reasoning": "the model does not reason before answering",
    "text.verbosity": "a hint for reasoning models; the answer's length follows the limits",
    "truncation": "the input is never truncated; one too long for the model is an error",
    "include": "no reasoning or search data exists to include (logprobs: LOGPROBS_INCLUDE)",
    "max_tool_calls": "counts built-in tool calls; there are none",
    "prompt_cache_key": "the prefix cache matches prompts by their tokens",
    "service_tier": "one tier: the server's queue",
    "user": "informational",
    "safety_identifier": "informational",
    "stream_options.include_obfuscation": "no padding is sent",
}


def _refuse_stateful(body: ResponseRequest) -> None:
    if body.previous_response_id is not None:
        raise RequestError(
            "responses are not stored on this server, so none can be continued; send the "
            "conversation as input items (as with store: false)",
            param="previous_response_id",
        )
    if body.conversation is not None:
        raise RequestError(
            "conversations are not stored on this server; send the conversation as input items",
            param="conversation",
        )
    if body.background:
        raise RequestError(
            "background responses are not supported by this server; accepted: false",
            param="background",
        )


def _text(content: str | list[ContentPart], param: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for index, part in enumerate(content):
        if isinstance(part, MediaContent):
            raise RequestError(
                f"{part.type!r} parts are not supported by this model: it reads text; send "
                "input_text parts",
                param=f"{param}[{index}]",
            )
        texts.append(part.text if isinstance(part, TextContent) else part.refusal)
    return "".join(texts)


def _messages(body: ResponseRequest) -> list[Message]:
    """The conversation the input items spell, ``instructions`` first."""
    messages: list[Message] = []
    if body.instructions:
        messages.append(Message(role="system", content=body.instructions))
    items: list[MessageItem | FunctionCallItem | FunctionCallOutputItem | OtherItem] = (
        [MessageItem(role="user", content=body.input)]
        if isinstance(body.input, str)
        else list(body.input)
    )
    names: dict[str, str] = {}  # call id -> function name, for the tool messages
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if isinstance(item, MessageItem):
            role = "system" if item.role == "developer" else item.role
            messages.append(Message(role=role, content=_text(item.content, f"{where}.content")))
        elif isinstance(item, FunctionCallItem):
            try:
                call = ToolCall.from_openai(
                    {
                        "id": item.call_id,
                        "function": {"name": item.name, "arguments": item.arguments},
                    }
                )
            except Exception as exc:
                raise RequestError(str(exc), param=f"{where}.arguments") from None
            names[item.call_id] = item.name
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                messages[-1] = Message(
                    role="assistant", content=last.content, tool_calls=(*last.tool_calls, call)
                )
            else:
                messages.append(Message(role="assistant", tool_calls=(call,)))
        elif isinstance(item, FunctionCallOutputItem):
            if item.call_id not in names:
                raise RequestError(
                    f"{item.call_id!r} answers no earlier function_call item; known call ids: "
                    f"{sorted(names) or 'none'}",
                    param=f"{where}.call_id",
                )
            messages.append(
                Message(
                    role="tool",
                    content=_text(item.output, f"{where}.output"),
                    tool_call_id=item.call_id,
                    name=names[item.call_id],
                )
            )
        else:
            raise RequestError(
                f"input items of type {item.type!r} are not supported by this server; "
                "accepted: message, function_call, function_call_output",
                param=where,
            )
    if not any(m.role != "system" for m in messages):
        raise RequestError("the input holds no message", param="input")
    return messages


def _tools(body: ResponseRequest, default_tools: list[Tool]) -> list[Tool]:
    tools = []
    for index, raw in enumerate(body.tools or []):
        if not isinstance(raw, FunctionTool):
            raise RequestError(
                f"tools of type {raw.type!r} are not supported by this server; accepted: function",
                param=f"tools[{index}]",
            )
        function = FunctionDefinition(
            name=raw.name,
            description=raw.description or "",
            parameters=raw.parameters or {"type": "object", "properties": {}},
            strict=raw.strict,
        )
        tools.append(function_tool(function, param=f"tools[{index}].parameters"))
    tools = tools or list(default_tools)
    check_unique_names(tools)
    return tools


def _tool_choice(body: ResponseRequest) -> Any:
    """``tool_choice`` in the chat completion shape ``parse_tool_choice`` reads."""
    choice = body.tool_choice
    if isinstance(choice, FunctionChoice):
        return {"type": "function", "function": {"name": choice.name}}
    if isinstance(choice, AllowedToolsChoice):
        tools = [{"type": "function", "function": {"name": t.name}} for t in choice.tools]
        return {"type": "allowed_tools", "allowed_tools": {"mode": choice.mode, "tools": tools}}
    return choice


def _response_schema(body: ResponseRequest) -> ResponseSchema | None:
    fmt = body.text.format if body.text is not None else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return ResponseSchema(name="json_object", schema=None, param="text.format")
    if fmt.schema_ is None or fmt.name is None:
        raise RequestError(
            "a json_schema format needs a 'name' and a 'schema'", param="text.format"
        )
    return ResponseSchema(
        name=fmt.name,
        schema=fmt.schema_,
        strict=bool(fmt.strict),
        description=fmt.description,
        param="text.format.schema",
    )


def to_responses_call(
    body: ResponseRequest, *, default_tools: list[Tool], max_tokens_cap: int
) -> ChatCall:
    """Validate a Responses request beyond its shape and convert it to fncall's types."""
    _refuse_stateful(body)
    messages = _messages(body)
    tools = _tools(body, default_tools)
    options = sampling_options(
        max_tokens=body.max_output_tokens,
        max_tokens_cap=max_tokens_cap,
        max_tokens_param="max_output_tokens",
        temperature=body.temperature,
        top_p=body.top_p,
    )
    logprobs = bool(body.top_logprobs) or LOGPROBS_INCLUDE in (body.include or ())
    if logprobs:
        options["top_logprobs"] = body.top_logprobs or 0
    return ChatCall(
        messages=messages,
        tools=tools,
        tool_choice=parse_tool_choice(_tool_choice(body), tools),
        parallel_tool_calls=body.parallel_tool_calls is not False,
        options=options,
        stream=bool(body.stream),
        include_usage=True,
        response_schema=_response_schema(body),
        logprobs=logprobs,
    )
