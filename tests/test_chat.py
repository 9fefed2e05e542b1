"""LocalChat over a scripted engine: the whole render -> constrain -> generate -> parse path."""

from __future__ import annotations

import json

import pytest

from conftest import PARIS, TIME, TWO, WEATHER, function_tool
from fncall.constrain import accepts
from fncall.engine.base import Generation
from fncall.engine.deltas import assemble_turn
from fncall.engine.scripted import ScriptedEngine
from fncall.errors import ModelOutputError, UserError
from fncall.execute import chat
from fncall.pipeline import LocalChat
from fncall.types import Message, ToolChoice

TOOLS = [WEATHER, TIME]


class ChunkedEngine(ScriptedEngine):
    """Like ScriptedEngine, but hands text to ``on_text`` a few characters at a time."""

    def generate(self, prompt, *, on_text=None, **kwargs):
        generation = super().generate(prompt, **kwargs)
        if on_text is not None:
            for i in range(0, len(generation.text), 3):
                on_text(generation.text[i : i + 3])
        return generation


def make(*outputs, engine_cls=ScriptedEngine, **options):
    engine = engine_cls(outputs)
    return engine, LocalChat(engine, **options)


def test_complete_parses_a_constrained_call():
    engine, model = make(PARIS, format="json")
    turn = model.complete([Message(role="user", content="Weather in Paris?")], TOOLS)
    assert [(c.name, dict(c.arguments)) for c in turn.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert turn.finish_reason == "tool_calls" and turn.content is None and turn.raw == PARIS
    request = engine.requests[0]
    assert request.constraint is not None  # ScriptedEngine checked PARIS against it
    assert '"name": "get_weather"' in request.prompt and '"name": "get_time"' in request.prompt
    assert request.prompt.endswith("<|im_start|>assistant\n")


def test_plain_answer_in_auto_mode():
    _, model = make("I don't know that.", format="json")
    turn = model.complete("Who won in 1998?", TOOLS)
    assert turn.tool_calls == () and turn.content == "I don't know that."
    assert turn.finish_reason == "stop"


@pytest.mark.parametrize(
    ("syntax", "prose"),
    [
        ("hermes", 'Use it like this: <tool_call>\n{"name": "get_weather", "arguments": {}}'),
        ("json", 'Example: [{"name": "get_weather", "arguments": {"city": "Paris"}}]'),
        ("json", '```python\nget_weather(city="Paris")\n{"name": "get_weather"}\n```'),
        ("pythonic", 'Call get_weather(city="Paris") like [get_weather(city="Paris")]'),
    ],
)
def test_text_branch_of_the_grammar_is_never_mined_for_calls(syntax, prose):
    _, constrained = make(prose, format=syntax)
    turn = constrained.complete("How do I check the weather?", TOOLS)
    assert turn.tool_calls == () and turn.content == prose.strip()
    _, tolerant = make(prose, format=syntax, constrained=False)
    try:  # without a grammar the tolerant parser may dig a call out, or give up: never text
        found = tolerant.complete("How do I check the weather?", TOOLS)
    except ModelOutputError:
        return
    assert found.tool_calls or found.content != prose.strip()


def test_a_text_answer_that_is_only_a_bare_call_is_that_call():
    # make demo: "What's the weather like in Paris right now?" was answered with the text
    # get_weather(city="Paris"): the grammar took it for prose, as the list's "[" was missing.
    _, model = make('get_weather(city="Paris")', format="pythonic", judge=None)
    turn = model.complete("What's the weather like in Paris right now?", TOOLS)
    assert [(c.name, dict(c.arguments)) for c in turn.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert turn.content is None and turn.finish_reason == "tool_calls"
    _, model = make('get_weather(city="Paris"), get_time(tz="UTC")', format="pythonic", judge=None)
    assert [c.name for c in model.complete("both", TOOLS).tool_calls] == ["get_weather", "get_time"]


CONVERT = function_tool(
    "convert",
    description="Convert an amount between units",
    amount={"type": "number"},
    unit={"type": "string"},
    to={"type": "string"},
)


@pytest.mark.parametrize(
    ("text", "arguments"),
    [
        ('convert(42, "km", "mi")', {"amount": 42, "unit": "km", "to": "mi"}),
        ('convert(42, "km", to="mi")', {"amount": 42, "unit": "km", "to": "mi"}),
        ('```python\nconvert(42, "km", "mi")\n```', {"amount": 42, "unit": "km", "to": "mi"}),
    ],
)
def test_a_bare_call_with_positional_arguments_binds_them_in_the_order_the_prompt_shows(
    text, arguments
):
    # A Python list of calls invites Python's positional arguments: "convert(42, "km", "mi")"
    # (3 of 240 development cases with the tools shown as Python stubs).
    _, model = make(text, format="pythonic", judge=None)
    turn = model.complete("How many miles is 42 km?", [CONVERT])
    assert [(c.name, dict(c.arguments)) for c in turn.tool_calls] == [("convert", arguments)]


@pytest.mark.parametrize(
    "text",
    [
        'convert(42, "km", "mi", "extra")',  # more positional arguments than parameters
        'convert(42, "km", amount=3)',  # a parameter given twice
        'convert("km", 42, "mi")',  # bound in order, the schema refuses the values
        "convert(*values)",
    ],
)
def test_positional_arguments_that_do_not_bind_leave_the_text_as_text(text):
    _, model = make(text, format="pythonic", judge=None)
    turn = model.complete("How many miles is 42 km?", [CONVERT])
    assert turn.tool_calls == () and turn.content == text


@pytest.mark.parametrize(
    "text",
    [
        'get_weather(city="Paris") is the call to make.',  # prose around it
        'get_forecast(city="Paris")',  # not an offered function
        "get_weather(city=3)",  # a value the schema refuses
        'get_weather(city="Paris", days=2)',  # a parameter the function does not have
        "Paris (France) is sunny.",
    ],
)
def test_text_that_is_more_or_other_than_an_offered_call_stays_text(text):
    _, model = make(text, format="pythonic", judge=None)
    turn = model.complete("What's the weather like in Paris?", TOOLS)
    assert turn.tool_calls == () and turn.content == text


def test_a_streamed_bare_call_is_never_shown_as_content():
    _, model = make('get_weather(city="Paris")', engine_cls=ChunkedEngine, format="pythonic")
    deltas = list(model.stream("What's the weather like in Paris?", TOOLS))
    assert not any(d.content for d in deltas)
    turn = assemble_turn(deltas)
    assert [(c.name, dict(c.arguments)) for c in turn.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    prose = "get_weathering is not a word, but the sky over Paris is clear."
    _, model = make(prose, engine_cls=ChunkedEngine, format="pythonic")
    deltas = list(model.stream("Is get_weathering a word?", TOOLS))
    assert "".join(d.content or "" for d in deltas) == prose
    assert sum(1 for d in deltas if d.content) > 3  # streamed once the start is decided


def test_calls_get_fresh_ids_every_turn():
    _, model = make(TWO, TWO, format="json")
    first = model.complete("both", TOOLS).tool_calls
    second = model.complete("both", TOOLS).tool_calls
    ids = {c.id for c in first + second}
    assert len(ids) == 4


def test_tool_choice_none_offers_no_tools_and_parses_nothing():
    engine, model = make(PARIS, format="json")
    turn = model.complete("Weather?", TOOLS, tool_choice="none")
    assert turn.tool_calls == () and turn.content == PARIS
    assert engine.requests[0].constraint is None
    assert "get_weather" not in engine.requests[0].prompt


@pytest.mark.parametrize("fmt", ["json", "pythonic"])
def test_an_answer_turn_with_tools_lists_them_but_admits_text_only(fmt):
    """``answer_with_tools``: the answer turn's prompt shows the tools (so it extends the calling
    turn's prompt), and its grammar refuses any start of a call."""
    answer = "It is 18 degrees in Paris."
    engine, model = make(answer, format=fmt, answer_with_tools=True)
    history = [Message(role="user", content="Weather in Paris?")]
    turn = model.complete(history, TOOLS, tool_choice="none")
    assert turn.tool_calls == () and turn.content == answer
    request = engine.requests[0]
    assert "get_weather" in request.prompt and "get_time" in request.prompt
    assert request.prompt == model.render(history, TOOLS)  # the calling turn's prompt, exactly
    assert request.prompt == model.render(history, TOOLS, tool_choice="none")
    call = PARIS if fmt == "json" else "[get_weather(city='Paris')]"
    assert accepts(request.constraint, answer)
    assert not accepts(request.constraint, call)
    assert not accepts(request.constraint, " " + call)


def test_answer_with_tools_follows_the_model_and_needs_constraints(monkeypatch):
    import fncall.formats.auto

    monkeypatch.setattr(fncall.formats.auto, "ANSWERS_WITH_TOOLS", ["qwen2.5-coder-1.5b"])
    big, small = ScriptedEngine(), ScriptedEngine()
    big.name, small.name = "Qwen2.5-Coder-1.5B-Instruct-Q4", "qwen2.5-coder-0.5b"
    assert LocalChat(big).answer_with_tools is True
    assert LocalChat(small).answer_with_tools is False
    assert LocalChat(big, constrained=False).answer_with_tools is False  # no grammar, no listing
    assert LocalChat(small, answer_with_tools=True).answer_with_tools is True
    with pytest.raises(UserError, match="answer_with_tools must be 'auto', True or False"):
        LocalChat(small, answer_with_tools="yes")


def test_named_tool_choice_offers_only_that_tool():
    engine, model = make('[{"name": "get_time", "arguments": {"tz": "UTC"}}]', format="json")
    choice = {"type": "function", "function": {"name": "get_time"}}
    turn = model.complete("Weather?", TOOLS, tool_choice=choice)
    assert [c.name for c in turn.tool_calls] == ["get_time"]
    assert "get_weather" not in engine.requests[0].prompt


def test_required_rejects_text_when_unconstrained():
    _, model = make("No.", format="json", constrained=False)
    with pytest.raises(ModelOutputError, match="requires a call") as info:
        model.complete("Weather?", TOOLS, tool_choice=ToolChoice(mode="required"))
    assert info.value.raw == "No."


def test_required_with_no_tools_is_a_user_error():
    _, model = make(PARIS, format="json")
    with pytest.raises(UserError, match="at least one tool"):
        model.complete("Weather?", [], tool_choice="required")


def test_unconstrained_broken_call_raises_with_raw_text():
    broken = '```json\n{"name": "get_weather", "arguments": {"city": "Par'
    engine, model = make(broken, format="json", constrained=False)
    with pytest.raises(ModelOutputError) as info:
        model.complete("Weather?", TOOLS)
    assert info.value.raw == broken
    assert engine.requests[0].constraint is None


def test_unconstrained_messy_call_is_understood():
    messy = 'Sure!\n```json\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}\n```'
    _, model = make(messy, format="json", constrained=False)
    turn = model.complete("Weather?", TOOLS)
    assert dict(turn.tool_calls[0].arguments) == {"city": "Paris"}
    assert turn.content == "Sure!"


def test_parallel_false_keeps_one_call():
    # An unconstrained model may ignore the request; the conversation loop keeps the promise.
    _, model = make(TWO, format="json", constrained=False)
    assert len(model.complete("both", TOOLS, parallel_tool_calls=False).tool_calls) == 2
    _, model = make(TWO, format="json", constrained=False)
    result = chat("both", TOOLS, model=model, parallel_tool_calls=False, execute=False)
    assert [c.name for c in result.calls] == ["get_weather"]


def test_a_call_repeated_within_the_turn_is_made_once():
    # The default model wrote "two of SKU BK-4471" as the same one-item call twice.
    twice = '[get_weather(city="Paris"), get_time(tz="UTC"), get_weather(city="Paris")]'
    _, model = make(twice, format="pythonic", judge=None)
    turn = model.complete("Weather in Paris and the time in UTC?", TOOLS)
    assert [(c.name, dict(c.arguments)) for c in turn.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "UTC"}),
    ]
    other = '[get_weather(city="Paris"), get_weather(city="Lyon")]'
    _, model = make(other, format="pythonic", judge=None)
    assert len(model.complete("Paris and Lyon?", TOOLS).tool_calls) == 2


def test_constraint_is_compiled_once_per_tool_set(monkeypatch):
    import fncall.constrain.build as constrain

    constrain.clear_cache()  # build_constraint's LRU is the one grammar cache
    built = []
    real = constrain._compile
    monkeypatch.setattr(constrain, "_compile", lambda *a, **k: built.append(1) or real(*a, **k))
    engine, model = make(PARIS, PARIS, "Hi", format="json")
    model.complete("a", TOOLS)
    model.complete("b", TOOLS)
    model.complete("c", [WEATHER])
    assert len(built) == 2
    first, second = (r.constraint for r in engine.requests[:2])  # each under its count decision
    assert first.inner is second.inner


def test_options_reach_the_engine_and_unknown_ones_are_refused():
    engine, model = make("ok", format="json", max_tokens=64)
    model.complete("hi", TOOLS, temperature=0.5, seed=3, stop="\n\n")
    request = engine.requests[0]
    assert (request.max_tokens, request.temperature, request.seed) == (64, 0.5, 3)
    assert request.stop == ("\n\n",)
    with pytest.raises(UserError, match=r"unknown option.*top_q"):
        model.complete("hi", TOOLS, top_q=0.9)


def test_truncated_generation_is_a_model_output_error():
    engine = ScriptedEngine([Generation(text=PARIS)])
    model = LocalChat(engine, format="json", constrained=False, max_tokens=20)
    with pytest.raises(ModelOutputError):
        model.complete("Weather?", TOOLS)


def test_auto_format_follows_the_model():
    assert LocalChat(ScriptedEngine(), format="auto").format.name == "json"
    qwen = ScriptedEngine()
    qwen.name = "qwen2.5-coder-0.5b"
    assert LocalChat(qwen).format.name == "pythonic"  # chosen on generated data (bench_count)
    qwen.name = "qwen2.5-0.5b-instruct"
    assert LocalChat(qwen).format.name == "json"
    with pytest.raises(UserError, match="unknown tool-call format 'xml'"):
        LocalChat(ScriptedEngine(), format="xml")


def test_history_with_calls_and_results_is_rendered_in_the_format():
    engine, model = make("It is 18 °C in Paris.", format="json")
    history = [
        Message(role="user", content="Weather in Paris?"),
        Message(role="assistant", tool_calls=model.format.parse(PARIS).tool_calls),
        Message(role="tool", content='{"temp_c": 18}', tool_call_id="call_1", name="get_weather"),
    ]
    turn = model.complete(history, TOOLS)
    assert turn.content == "It is 18 °C in Paris."
    prompt = engine.requests[0].prompt
    assert PARIS in prompt and '{"temp_c": 18}' in prompt


# -- streaming --------------------------------------------------------------------------------


def test_stream_text_arrives_in_pieces():
    text = "Paris is sunny [citation needed] today."
    _, model = make(text, format="json", engine_cls=ChunkedEngine)
    deltas = list(model.stream("Weather?", TOOLS))
    pieces = [d.content for d in deltas if d.content]
    assert len(pieces) > 2 and "".join(pieces) == text
    assert deltas[-1].finish_reason == "stop"


def test_stream_calls_have_valid_json_arguments():
    _, model = make(TWO, format="json", engine_cls=ChunkedEngine)
    deltas = list(model.stream("both", TOOLS))
    assert not any(d.content for d in deltas)
    headers = [d for d in deltas if d.name]
    assert [(d.index, d.name) for d in headers] == [(0, "get_weather"), (1, "get_time")]
    assert all(d.id and d.id.startswith("call_") for d in headers)
    for index in (0, 1):
        joined = "".join(d.arguments or "" for d in deltas if d.index == index)
        assert isinstance(json.loads(joined), dict)
    turn = assemble_turn(deltas)
    assert [dict(c.arguments) for c in turn.tool_calls] == [
        {"city": "Paris"},
        {"tz": "Europe/Paris"},
    ]
    assert turn.finish_reason == "tool_calls"


def test_stream_prose_then_fenced_call_when_unconstrained():
    text = 'Let me check.\n```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```'
    _, model = make(text, format="json", constrained=False, engine_cls=ChunkedEngine)
    turn = assemble_turn(model.stream("Weather?", TOOLS))
    assert turn.content == "Let me check.\n"
    assert [c.name for c in turn.tool_calls] == ["get_weather"]


def test_stream_hermes_holds_back_a_partial_tag():
    text = 'One moment. <tool_call>\n{"name": "get_time", "arguments": {"tz": "UTC"}}\n</tool_call>'
    _, model = make(text, format="hermes", constrained=False, engine_cls=ChunkedEngine)
    deltas = list(model.stream("Time?", TOOLS))
    content = "".join(d.content or "" for d in deltas)
    assert "<" not in content and content.strip() == "One moment."
    assert assemble_turn(deltas).tool_calls[0].name == "get_time"


def test_stream_raises_model_output_errors():
    _, model = make('[{"name": "get_time", "argu', format="json", constrained=False)
    with pytest.raises(ModelOutputError):
        list(model.stream("Time?", TOOLS))


def test_what_is_not_an_engine_or_a_chat_model_is_refused():
    with pytest.raises(UserError, match=r"engine must be an Engine \(name, generate"):
        LocalChat(object())
    with pytest.raises(UserError, match="model must be a ChatModel; object lacks: complete"):
        chat("Hi", TOOLS, model=object())
