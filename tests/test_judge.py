"""The judge: a second look at each drafted call before the turn leaves LocalChat."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from conftest import PARIS as WEATHER_CALL
from conftest import TIME, WEATHER, OldEngine
from conftest import TWO as BOTH
from fncall.engine.base import Generation
from fncall.engine.deltas import assemble_turn
from fncall.engine.scripted import ScriptedEngine
from fncall.errors import UserError
from fncall.judge import EXAMPLES, Judge, grounding, last_request
from fncall.pipeline import LocalChat
from fncall.types import Message, TokenLogprob, Tool, ToolCall, ToolResult

TOOLS = [WEATHER, TIME]
ASK = [Message(role="user", content="What time is it in Paris?")]


class ScoringEngine(ScriptedEngine):
    """A scripted engine that also scores: "yes" gets ``yes[function]`` (log-odds vs "no")
    for the function the judge's last question names."""

    def __init__(self, outputs, yes):
        super().__init__(outputs)
        self.yes = yes
        self.scored: list[str] = []

    def score(self, prompt, continuations):
        question = prompt.rsplit("The function `", 1)[1]
        name = question.split("`", 1)[0]
        self.scored.append(name)
        odds = self.yes[name]
        return [odds if c.lower() == "yes" else 0.0 for c in continuations]


def make(outputs, yes, **options):
    engine = ScoringEngine(outputs, yes)
    return engine, LocalChat(engine, format="json", **options)


def time_after_weather_result(engine, chat):
    """The turn after get_weather's result for "Weather in Paris? And the time in
    Europe/Paris?", drafted as a get_time call whose question scores -5."""
    call = ToolCall(id="c1", name="get_weather", arguments={"city": "Paris"})
    history = [
        Message(role="user", content="Weather in Paris? And the time in Europe/Paris?"),
        Message(role="assistant", tool_calls=(call,)),
        Message(role="tool", content='{"temp": 21}', tool_call_id="c1", name="get_weather"),
    ]
    engine.yes["get_time"] = -5.0
    engine.enqueue('[{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}]')
    engine.enqueue("It is 21 degrees.")
    return chat.complete(history, TOOLS)


def test_a_rejected_call_becomes_a_text_answer_without_the_tools():
    engine, model = make([WEATHER_CALL, "I cannot tell the time."], {"get_weather": -3.0})
    turn = model.complete(ASK, TOOLS)
    assert turn.tool_calls == () and turn.content == "I cannot tell the time."
    assert engine.scored == ["get_weather"]
    draft, answer = engine.requests
    assert '"name": "get_weather"' in draft.prompt and "get_weather" not in answer.prompt
    assert answer.constraint is None and answer.prompt.endswith("<|im_start|>assistant\n")
    # Usage counts both generations.
    assert turn.prompt_tokens == len(draft.prompt.encode()) + len(answer.prompt.encode())


def test_a_kept_call_is_returned_unchanged_and_each_function_scored_once():
    twice = WEATHER_CALL[:-1] + ", " + WEATHER_CALL[1:].replace("Paris", "Rome")
    engine, model = make([twice], {"get_weather": 2.0})
    turn = model.complete([Message(role="user", content="Weather in Paris and Rome?")], TOOLS)
    assert [c.name for c in turn.tool_calls] == ["get_weather", "get_weather"]
    assert engine.scored == ["get_weather"] and engine.remaining == 0


def test_one_fitting_function_keeps_the_whole_turn():
    # (Both functions grounded: "Paris" is a word of "Europe/Paris".)
    # The judge decides whether to call; which calls and how many stay the draft's.
    engine, model = make([BOTH], {"get_weather": -1.0, "get_time": 3.0})
    turn = model.complete(ASK, TOOLS)
    assert [c.name for c in turn.tool_calls] == ["get_weather", "get_time"]
    assert turn.finish_reason == "tool_calls" and len(engine.requests) == 1
    assert sorted(engine.scored) == ["get_time", "get_weather"]


def test_a_function_whose_values_nobody_gave_is_dropped_beside_grounded_ones():
    # Asked one thing, the model added a call to another offered function with invented values.
    extra = (
        '[{"name": "get_time", "arguments": {"tz": "Paris"}}, '
        '{"name": "get_time", "arguments": {"tz": "Lyon"}}, '
        '{"name": "get_time", "arguments": {"tz": "Nice"}}, '
        '{"name": "get_weather", "arguments": {"city": "Rome"}}]'
    )
    ask = [Message(role="user", content="What time is it in Paris, Lyon and Nice?")]
    engine, model = make([extra], {"get_time": 2.0, "get_weather": 2.0})
    turn = model.complete(ask, TOOLS)
    assert [(c.name, c.arguments["tz"]) for c in turn.tool_calls] == [
        ("get_time", "Paris"),
        ("get_time", "Lyon"),
        ("get_time", "Nice"),
    ]
    assert engine.scored == ["get_time"]
    assert turn.decision is not None and turn.decision.kept
    assert turn.decision.grounding == 0.75  # of the draft as written
    assert [c.name for c in turn.decision.draft][-1] == "get_weather"
    assert len(turn.decision.calls) == 3
    # With the step off (0), the draft is kept whole.
    _, model = make([extra], {"get_time": 2.0}, judge=Judge(min_function_grounding=0.0))
    assert [c.name for c in model.complete(ask, TOOLS).tool_calls][-1] == "get_weather"
    # A draft mostly invented is not trimmed into a call: it is not a call at all.
    invented = (
        '[{"name": "get_time", "arguments": {"tz": "Paris"}}, '
        '{"name": "get_weather", "arguments": {"city": "Rome"}}]'
    )
    _, model = make([invented, "I can't say."], {"get_time": 2.0})
    assert model.complete(ASK, TOOLS).tool_calls == ()


def test_grounding_counts_a_value_given_in_any_spelling():
    paris = ToolCall(name="get_time", arguments={"tz": "Europe/Paris"})
    assert grounding([paris], "What time is it in Paris?") == 1.0  # by its word "Paris"
    invented = ToolCall(name="book", arguments={"doctor_id": "12345", "date": "2023-04-15"})
    assert grounding([invented], "A dermatologist in Portland, please") == 0.0
    # Words of one or two characters say nothing.
    short = ToolCall(name="f", arguments={"code": "a-b"})
    assert grounding([short], "a or b") == 0.0
    spelled = ToolCall(
        name="f", arguments={"rate": 0.05, "n": 3, "grade": 6, "w": 1179, "h": 238, "kg": 192}
    )
    assert grounding([spelled], "5% for three 6th graders, 1179x238, 192.0 kg") == 1.0
    assert grounding([ToolCall(name="f", arguments={"n": 1})], "150 items") == 0.0
    # A code the request's words spell (the demo's "250 US dollars in euros" abstained without).
    money = ToolCall(name="f", arguments={"amount": 250, "from": "USD", "to": "EUR"})
    assert grounding([money], "How much is 250 US dollars in euros?") == 1.0
    assert grounding([ToolCall(name="f", arguments={"c": "DE"})], "to Germany") == 0.0


def test_optional_arguments_nobody_gave_are_left_to_the_function_default():
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "unit": {"type": "string", "default": "celsius"},
            "hourly": {"type": "boolean"},
            "confidence": {"type": "number"},
        },
        "required": ["city"],
    }
    forecast = Tool(name="forecast", description="Weather forecast", parameters=schema)
    call = ToolCall(
        name="forecast",
        arguments={
            "city": "Oslo",  # required: kept whatever it is
            "days": 3,  # "three" in the request
            "unit": "celsius",  # the default
            "hourly": True,  # a boolean: nothing to look for
            "confidence": 0.9,  # "90%" in the request
        },
    )
    request = "Three days of weather for Bergen, 90% sure"
    assert Judge().given_options([call], [forecast], request) == (call,)
    invented = replace(call, arguments={"city": "Bergen", "days": 14, "unit": "kelvin"})
    (kept,) = Judge().given_options([invented], [forecast], request)
    assert dict(kept.arguments) == {"city": "Bergen"} and kept.id == invented.id
    assert Judge(given_options_only=False).given_options([invented], [forecast], request) == (
        invented,
    )


def test_a_default_or_an_invented_option_does_not_count_against_grounding():
    # The real model wrote get_weather(city="Paris", unit="celsius") for "the weather in Paris".
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
            "days": {"type": "integer"},
        },
        "required": ["city"],
    }
    weather = Tool(name="get_weather", description="Weather in a city", parameters=schema)
    draft = (
        '[{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius", "days": 7}}]'
    )
    engine, model = make([draft], {"get_weather": 2.0})
    turn = model.complete("What's the weather in Paris right now?", [weather])
    assert turn.decision is not None and turn.decision.grounding == 1.0
    # The default stays in the call (it is what runs anyway); the invented option goes.
    assert [dict(c.arguments) for c in turn.tool_calls] == [{"city": "Paris", "unit": "celsius"}]
    assert engine.scored == ["get_weather"]


def test_calls_of_one_function_are_never_dropped_for_grounding():
    # A parallel request keeps all its calls, even one whose value was not in the request.
    three = (
        '[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
        '{"name": "get_weather", "arguments": {"city": "Lyon"}}, '
        '{"name": "get_weather", "arguments": {"city": "Nice"}}]'
    )
    ask = [Message(role="user", content="Weather in Paris, Lyon and Marseille?")]
    _, model = make([three], {"get_weather": 2.0})
    turn = model.complete(ask, TOOLS)
    assert [dict(c.arguments)["city"] for c in turn.tool_calls] == ["Paris", "Lyon", "Nice"]


def test_when_no_function_is_grounded_enough_none_is_dropped_for_it():
    judge = Judge(min_function_grounding=0.5)
    calls = (
        ToolCall(name="get_time", arguments={"tz": "UTC"}),
        ToolCall(name="get_weather", arguments={"city": "Rome"}),
    )
    assert judge.grounded_functions(calls, "What time is it in Paris?") == calls


def test_the_threshold_moves_the_decision():
    _, strict = make([WEATHER_CALL, "No."], {"get_weather": 0.5}, judge=Judge(threshold=1.0))
    assert strict.complete(ASK, TOOLS).tool_calls == ()
    _, lenient = make([WEATHER_CALL], {"get_weather": 0.5}, judge=Judge(threshold=0.0))
    assert [c.name for c in lenient.complete(ASK, TOOLS).tool_calls] == ["get_weather"]


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_a_call_the_request_demands_is_not_judged(choice):
    engine, model = make([WEATHER_CALL], {"get_weather": -9.0})
    turn = model.complete(ASK, TOOLS, tool_choice=choice)
    assert [c.name for c in turn.tool_calls] == ["get_weather"] and engine.scored == []


LYON_TIME = '[{"name": "get_time", "arguments": {"tz": "Lyon"}}]'


def after_weather(model):
    call = model.complete(ASK, TOOLS, tool_choice="required").tool_calls[0]
    return [
        *ASK,
        Message(role="assistant", tool_calls=(call,)),
        ToolResult(call_id=call.id, name=call.name, content="Paris is near Lyon").to_message(),
    ]


def test_values_from_the_system_message_are_given():
    # An application's context (the user's city) is not in the request, but the conversation
    # gave it; an earlier user turn does not count.
    system = Message(role="system", content="The user lives in Lyon.")
    ask = [system, Message(role="user", content="What time is it at home?")]
    assert last_request(ask) == ("What time is it at home?", f"{system.content}\n{ask[1].content}")
    _, model = make([LYON_TIME], {"get_time": 2.0})
    assert [c.name for c in model.complete(ask, TOOLS).tool_calls] == ["get_time"]
    earlier = [
        Message(role="user", content="I live in Lyon."),
        Message(role="assistant", content="Noted."),
        Message(role="user", content="What time is it at home?"),
    ]
    _, model = make([LYON_TIME, "I can't say."], {"get_time": 2.0})
    assert model.complete(earlier, TOOLS).tool_calls == ()


def test_after_tool_results_the_request_is_judged_and_results_ground_values():
    engine, model = make(
        [WEATHER_CALL, *[LYON_TIME] * 2, "It is noon in Lyon."],
        {"get_weather": 2.0, "get_time": 2.0},
    )
    history = after_weather(model)
    assert last_request(history) == (ASK[0].content, f"{ASK[0].content}\nParis is near Lyon")
    # "Lyon" came from the tool result: grounded, so the question decides (it passes).
    assert model.complete(history, TOOLS).tool_calls and engine.scored == ["get_time"]
    engine.yes["get_time"] = -5.0  # now the question rejects it: answered in text
    assert model.complete(history, TOOLS).content == "It is noon in Lyon."
    assert engine.remaining == 0 and engine.requests[-1].constraint is None
    assert last_request([*ASK, Message(role="assistant", content="Hi")]) is None
    engine, model = make([WEATHER_CALL], {"get_weather": -9.0}, judge=None)
    assert model.complete(ASK, TOOLS).tool_calls and engine.scored == []


def test_after_tool_results_a_repeat_is_answered_unscored():
    # The same function again with a value only the result gave (the loop's rule 4, applied by
    # LocalChat itself so that a client driving its own loop gets it too).
    engine, model = make(
        [WEATHER_CALL, WEATHER_CALL.replace("Paris", "Lyon"), "Sunny in Paris."],
        {"get_weather": 9.0},
    )
    turn = model.complete(after_weather(model), TOOLS)
    assert turn.content == "Sunny in Paris." and turn.tool_calls == () and engine.scored == []
    assert turn.decision is not None and turn.decision.repeated and not turn.decision.kept


def test_streaming_a_rejected_call_streams_the_text_answer():
    engine, model = make([WEATHER_CALL, "It is noon somewhere."], {"get_weather": -2.0})
    deltas = list(model.stream(ASK, TOOLS))
    assert len(engine.requests) == 2 and engine.requests[1].constraint is None
    assert all(d.name is None and d.arguments is None for d in deltas)
    assert "".join(d.content or "" for d in deltas) == "It is noon somewhere."
    turn = assemble_turn(deltas)
    assert turn.finish_reason == "stop" and turn.tool_calls == ()
    _, model = make([BOTH], {"get_weather": -1.0, "get_time": 3.0})
    turn = assemble_turn(model.stream(ASK, TOOLS))
    assert [c.name for c in turn.tool_calls] == ["get_weather", "get_time"]


def test_the_judge_needs_an_engine_that_scores():
    plain = ScriptedEngine([WEATHER_CALL])
    assert LocalChat(plain).judge is None  # "auto": off for an engine that cannot score
    with pytest.raises(UserError, match="can score text"):
        LocalChat(plain, judge=Judge())
    with pytest.raises(UserError, match="judge must be"):
        LocalChat(plain, judge="always")
    for bad in (float("nan"), "0.5", True):
        with pytest.raises(UserError, match="threshold must be a number"):
            Judge(threshold=bad)
    with pytest.raises(UserError, match="question must be one of"):
        Judge(question="vibes")
    assert Judge(threshold=-math.inf).threshold == -math.inf


def test_the_prompt_holds_the_examples_and_the_function_description():
    prompt = Judge().prompt(None, "Weather in Paris?", WEATHER)
    for asked, name, _, answer in EXAMPLES:
        assert asked in prompt and name in prompt and f"\n{answer}<|im_end|>" in prompt
    assert prompt.count("Current weather in a city") == 1
    assert prompt.endswith(
        'described as: "Current weather in a city"<|im_end|>\n<|im_start|>assistant\n'
    )


def test_the_question_comes_before_what_changes_so_its_kv_cache_is_shared():
    """Two questions about different requests and functions share every character up to the
    request: the fixed question text is part of the prefix the engine keeps, not new tokens."""
    from fncall.judge import QUESTIONS
    from fncall.types import Tool

    other = Tool(name="get_time", description="The time in a time zone.")
    for question_first in (True, False):
        judge = Judge(question_first=question_first)
        first = judge.prompt(None, "Weather in Paris?", WEATHER)
        second = judge.prompt(None, "Time in Oslo?", other)
        split = next(i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b)
        shared, tail = first[:split], first[split:]
        text = QUESTIONS[judge.question]
        assert (text in shared[shared.rindex("<|im_start|>user") :]) is question_first
        assert (text in tail) is not question_first
        assert "Weather in Paris?" in tail and "Current weather in a city" in tail
    with pytest.raises(UserError, match="question_first must be True or False"):
        Judge(question_first=1)  # type: ignore[arg-type]


def test_grounding_counts_argument_values_found_in_the_request():
    from fncall.judge import grounding
    from fncall.types import ToolCall
    from fncall.values import appears

    assert appears("1", "a 1 b") and not appears("1", "150 apples")
    assert appears("new york", "Flights to New York.") and not appears("2", "2.5 kg")
    paris = ToolCall(name="get_weather", arguments={"city": "Paris", "days": 3.0})
    assert grounding([paris], "Weather in Paris for 3 days?") == 1.0
    assert grounding([paris], "Weather in Paris?") == 0.5
    assert grounding([paris], "How tall is the Eiffel Tower?") == 0.0
    assert grounding([ToolCall(name="now")], "What time is it?") == 1.0


def test_a_call_whose_values_the_request_never_gave_is_answered_in_text_unscored():
    engine, model = make([WEATHER_CALL, "I can't say."], {"get_weather": 5.0})
    turn = model.complete([Message(role="user", content="How tall is the Eiffel Tower?")], TOOLS)
    assert turn.tool_calls == () and turn.content == "I can't say." and engine.scored == []
    _, lenient = make([WEATHER_CALL], {"get_weather": 5.0}, judge=Judge(min_grounding=0.0))
    assert lenient.complete([Message(role="user", content="How tall?")], TOOLS).tool_calls
    for bad in (-0.1, 1.5, "half"):
        with pytest.raises(UserError, match="min_grounding must be a number from 0 to 1"):
            Judge(min_grounding=bad)


def test_an_evaluation_records_the_decision_and_checks_the_draft(tmp_path):
    """What ``fncall eval report``'s decision curve is built from (fncall.evaluate.runner)."""
    from fncall.evaluate.data import load_cases
    from fncall.evaluate.runner import CaseResult, evaluate_case
    from test_eval_data import write_bfcl_folder

    cases = {c.id: c for c in load_cases(["simple_python"], data_dir=write_bfcl_folder(tmp_path))}
    paris = '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'
    engine, model = make([paris, "No."], {"get_weather": -1.0})  # a right draft the judge drops
    result = evaluate_case(model, cases["simple_python_1"])
    assert not result.verdict.valid and result.calls == ()
    assert result.decision == {
        "grounding": 1.0, "scores": {"get_weather": -1.0}, "kept": False, "threshold": 0.4,
        "min_grounding": 0.6, "repeated": False, "draft_valid": True,
    }  # fmt: skip
    assert CaseResult.from_json(result.to_json()).decision == result.decision
    engine.enqueue(paris)
    engine.yes["get_weather"] = 2.0
    kept = evaluate_case(model, cases["simple_python_1"])
    assert kept.verdict.valid and kept.decision is not None and kept.decision["kept"]
    unjudged = evaluate_case(LocalChat(ScriptedEngine([paris]), format="json", judge=None),
                             cases["simple_python_1"])  # fmt: skip
    assert unjudged.decision is None and "decision" not in unjudged.to_json()


class TopicEmbedder:
    """Vectors by topic word: a text about the weather and one about the time are orthogonal."""

    name = "topics"
    TOPICS = ("weather", "time", "tower")

    def __init__(self):
        self.encoded: list[str] = []

    def encode(self, texts):
        import numpy as np

        self.encoded.extend(texts)
        rows = [[float(t in text.lower()) for t in self.TOPICS] + [0.1] for text in texts]
        vectors = np.array(rows, dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_similarity_step_abstains_before_asking_when_no_called_function_is_near():
    embedder = TopicEmbedder()
    judge = Judge(min_similarity=0.5, embedder=embedder)
    # Grounded ("Paris" was given) and the model would say yes: only the similarity stops it.
    engine, model = make([WEATHER_CALL, "It is noon."], {"get_weather": 5.0}, judge=judge)
    turn = model.complete([Message(role="user", content="What time is it in Paris?")], TOOLS)
    assert turn.tool_calls == () and turn.content == "It is noon."
    assert engine.scored == []  # the question was never asked
    assert turn.decision is not None and not turn.decision.kept
    assert turn.decision.similarity is not None and turn.decision.similarity < 0.5
    assert embedder.encoded == ["What time is it in Paris?", "Current weather in a city"]
    # Near enough: the question decides as before, and the similarity is recorded.
    engine, model = make([WEATHER_CALL], {"get_weather": 5.0}, judge=judge)
    turn = model.complete([Message(role="user", content="The weather in Paris?")], TOOLS)
    assert turn.tool_calls and engine.scored == ["get_weather"]
    assert turn.decision is not None and turn.decision.similarity > 0.9
    # Off by default: nothing is embedded, nothing recorded.
    engine, model = make([WEATHER_CALL], {"get_weather": 5.0})
    turn = model.complete([Message(role="user", content="What time is it in Paris?")], TOOLS)
    assert turn.tool_calls and turn.decision is not None and turn.decision.similarity is None
    for bad in (1.5, -2, "near", True):
        with pytest.raises(UserError, match="min_similarity must be a cosine from -1 to 1"):
            Judge(min_similarity=bad)


def test_the_judge_similarity_option_folds_into_the_judge():
    import argparse

    from fncall.cli import judge_of, judge_option, similarity_option

    with_similarity = judge_of(argparse.Namespace(judge="auto", judge_similarity=0.2))
    assert with_similarity == Judge(min_similarity=0.2)
    threshold = judge_of(argparse.Namespace(judge=judge_option("1.5"), judge_similarity=0.3))
    assert (threshold.threshold, threshold.min_similarity) == (1.5, 0.3)
    assert judge_of(argparse.Namespace(judge="auto", judge_similarity=None)) == "auto"
    with pytest.raises(UserError, match="--judge-similarity needs the judge"):
        judge_of(argparse.Namespace(judge=None, judge_similarity=0.2))
    for bad in ("2", "nan", "close"):
        with pytest.raises(argparse.ArgumentTypeError, match="a cosine from -1 to 1"):
            similarity_option(bad)


def test_a_judge_threshold_keeps_the_models_other_settings():
    """``--judge THRESHOLD`` changes the threshold of the model's own judge: the 0.5B still asks
    its question only after tool results (it once became ``Judge(threshold=...)``, which asks
    on every first turn)."""
    import argparse

    from fncall.cli import judge_of, judge_option
    from fncall.judge import default_judge

    smaller = "qwen2.5-coder-0.5b"
    judge = judge_of(argparse.Namespace(judge=judge_option("0.4"), model=smaller))
    assert judge == replace(default_judge(smaller), threshold=0.4)
    assert judge.first_turn_question is False
    assert judge_of(argparse.Namespace(judge=judge_option("-2"))) == Judge(threshold=-2.0)
    assert judge_of(argparse.Namespace(judge=judge_option("off"))) is None
    assert judge_of(argparse.Namespace(judge=judge_option("auto"))) == "auto"


def test_a_model_with_its_own_threshold_gets_it_by_default():
    """The 1.5B Qwen answers the judge's question with lower log-odds than the 0.5B: the same
    score keeps its call where the default threshold would turn it down."""
    from fncall.judge import DEFAULT_THRESHOLD, default_judge

    assert default_judge("some-other-model") == Judge()
    assert default_judge(None) == Judge()
    larger = default_judge("qwen2.5-coder-1.5b-instruct-q4_k_m")
    assert larger.threshold < DEFAULT_THRESHOLD and larger.first_turn_question
    odds = (larger.threshold + DEFAULT_THRESHOLD) / 2
    for name, kept in (("qwen2.5-coder-1.5b-instruct-q4_k_m", True), ("some-other-model", False)):
        engine = ScoringEngine([WEATHER_CALL, "I cannot tell."], {"get_weather": odds})
        engine.name = name
        turn = LocalChat(engine, format="json").complete(
            [Message(role="user", content="Weather in Paris?")], TOOLS
        )
        assert bool(turn.tool_calls) is kept, name


def test_the_default_model_is_asked_the_question_only_after_tool_results():
    """The 0.5B's first turns skip the question (it never changed one on the development data):
    a grounded draft is kept without a scored prompt; after results the question still decides."""
    from fncall.judge import default_judge

    judge = default_judge("qwen2.5-coder-0.5b-instruct-q4_k_m")
    assert judge.first_turn_question is False and judge.threshold == Judge().threshold
    engine = ScoringEngine([WEATHER_CALL], {"get_weather": -5.0})
    engine.name = "qwen2.5-coder-0.5b-instruct-q4_k_m"
    chat = LocalChat(engine, format="json")
    turn = chat.complete([Message(role="user", content="Weather in Paris?")], TOOLS)
    assert [c.name for c in turn.tool_calls] == ["get_weather"] and engine.scored == []
    assert turn.decision is not None and turn.decision.kept and turn.decision.scores == {}
    assert turn.decision.question is False
    # Ungrounded drafts are still turned down without the question.
    engine.enqueue('[{"name": "get_weather", "arguments": {"city": "Lima"}}]')
    engine.enqueue("I can only tell the weather.")
    turn = chat.complete([Message(role="user", content="What is the capital of Peru?")], TOOLS)
    assert turn.tool_calls == () and engine.scored == []
    # After a result, a call to another function the request never needed is asked about.
    turn = time_after_weather_result(engine, chat)
    assert engine.scored == ["get_time"] and turn.tool_calls == ()
    with pytest.raises(
        UserError, match="first_turn_question must be True, False, 'unnamed' or 'unsure'"
    ):
        Judge(first_turn_question="no")  # type: ignore[arg-type]


def test_unnamed_asks_the_question_only_of_a_request_that_names_no_called_function():
    """``first_turn_question="unnamed"``: a request that shares a content word with a called
    function's name or description keeps the draft unasked; one that names none is asked, and
    the turn after tool results is asked whatever the request names."""
    engine, model = make(
        [WEATHER_CALL, WEATHER_CALL, "Paris is in France."],
        {"get_weather": -5.0},
        judge=Judge(first_turn_question="unnamed"),
    )
    named = model.complete([Message(role="user", content="Weather in Paris today?")], TOOLS)
    assert [c.name for c in named.tool_calls] == ["get_weather"] and engine.scored == []
    decision = named.decision
    assert decision is not None and decision.kept and decision.named == "get_weather"
    assert decision.question is False and decision.scores == {}
    # "Which country is Paris in?" names nothing get_weather does: asked, and turned down.
    unnamed = model.complete([Message(role="user", content="Which country is Paris in?")], TOOLS)
    assert unnamed.tool_calls == () and unnamed.content == "Paris is in France."
    assert engine.scored == ["get_weather"] and unnamed.decision is not None
    assert unnamed.decision.named is None and unnamed.decision.question is True
    # After a result the question decides, even for a function the request names.
    after = time_after_weather_result(engine, model)
    assert engine.scored[-1] == "get_time" and after.tool_calls == ()
    assert after.decision is not None and after.decision.named is None


def test_one_named_function_of_several_keeps_the_turn_unasked():
    engine, model = make(
        [BOTH], {"get_weather": -5.0, "get_time": -5.0}, judge=Judge(first_turn_question="unnamed")
    )
    turn = model.complete([Message(role="user", content="What time is it in Paris?")], TOOLS)
    assert [c.name for c in turn.tool_calls] == ["get_weather", "get_time"]
    assert engine.scored == [] and turn.decision is not None
    assert turn.decision.named == "get_time"


def drafted(text, first_probability):
    """A scripted draft whose first token the model chose with ``first_probability``."""
    first = TokenLogprob(
        id=ord(text[0]), token=text[0], bytes=text[:1].encode(), logprob=math.log(first_probability)
    )
    return Generation(text=text, logprobs=(first,))


def test_unsure_asks_a_named_request_when_the_draft_was_unsure():
    """``first_turn_question="unsure"``: a request naming the called function keeps a draft the
    model was sure of without the question; an unsure draft of the same request is asked, and
    so is a sure draft of a request that names nothing. The log-probabilities the judge asked
    for are not returned to a caller who did not ask for them."""
    engine, model = make(
        [WEATHER_CALL, drafted(WEATHER_CALL, 0.6), "I cannot say.", WEATHER_CALL, "In France."],
        {"get_weather": -5.0},
        judge=Judge(first_turn_question="unsure"),
    )
    named = [Message(role="user", content="Weather in Paris today?")]
    sure = model.complete(named, TOOLS)  # a scripted byte is certain: probability 1
    assert [c.name for c in sure.tool_calls] == ["get_weather"] and engine.scored == []
    assert sure.decision is not None and sure.decision.named == "get_weather"
    assert sure.decision.confidence == 1.0 and sure.decision.question is False
    assert sure.logprobs is None and engine.requests[0].top_logprobs == 0
    unsure = model.complete(named, TOOLS)
    assert unsure.tool_calls == () and unsure.content == "I cannot say."
    assert engine.scored == ["get_weather"] and unsure.decision is not None
    assert unsure.decision.named is None and unsure.decision.question is True
    assert unsure.decision.confidence == pytest.approx(0.6)
    unnamed = model.complete([Message(role="user", content="Which country is Paris in?")], TOOLS)
    assert unnamed.tool_calls == () and engine.scored == ["get_weather"] * 2
    # After a result the question decides, and the draft's probabilities are not asked for.
    after = time_after_weather_result(engine, model)
    assert engine.scored[-1] == "get_time" and after.tool_calls == ()
    assert engine.requests[-2].top_logprobs is None and after.decision is not None
    assert after.decision.confidence is None


def test_unsure_keeps_the_logprobs_a_caller_asked_for():
    engine, model = make(
        [WEATHER_CALL], {"get_weather": -5.0}, judge=Judge(first_turn_question="unsure")
    )
    turn = model.complete(
        [Message(role="user", content="Weather in Paris today?")], TOOLS, top_logprobs=2
    )
    assert turn.tool_calls and turn.logprobs is not None and engine.requests[0].top_logprobs == 2


def test_unsure_asks_when_the_engine_gives_no_probabilities():
    """An engine whose ``generate`` takes no ``top_logprobs`` leaves the confidence unknown:
    the question is asked, as under ``first_turn_question=True``."""

    class Plain(OldEngine, ScoringEngine):
        """A scoring engine whose ``generate`` predates the sampling fields."""

    engine = Plain([WEATHER_CALL, "I cannot say."], {"get_weather": -5.0})
    model = LocalChat(engine, format="json", judge=Judge(first_turn_question="unsure"))
    turn = model.complete([Message(role="user", content="Weather in Paris today?")], TOOLS)
    assert turn.tool_calls == () and engine.scored == ["get_weather"]
    assert turn.decision is not None and turn.decision.confidence is None


def test_sure_is_a_probability():
    assert Judge(first_turn_question="unsure", sure=0.5).sure == 0.5
    for bad in (-0.1, 1.5, "high", True, None):
        with pytest.raises(UserError, match="the judge's sure must be a number from 0 to 1"):
            Judge(sure=bad)  # type: ignore[arg-type]


def test_first_turn_question_accepts_true_false_unnamed_or_unsure():
    for good in (True, False, "unnamed", "unsure"):
        assert Judge(first_turn_question=good).first_turn_question == good
    for bad in ("yes", "sometimes", 1, None):
        with pytest.raises(
            UserError, match="first_turn_question must be True, False, 'unnamed' or 'unsure'"
        ):
            Judge(first_turn_question=bad)  # type: ignore[arg-type]


def test_the_judge_question_option_folds_into_the_judge():
    import argparse

    from fncall.cli import judge_of, judge_option
    from fncall.judge import default_judge

    def args(judge, question, similarity=None, model=None, sure=None):
        return argparse.Namespace(
            judge=judge,
            judge_question=question,
            judge_similarity=similarity,
            judge_sure=sure,
            model=model,
        )

    larger = "qwen2.5-coder-1.5b"
    assert judge_of(args("auto", "unnamed", model=larger)) == replace(
        default_judge(larger), first_turn_question="unnamed"
    )
    assert judge_of(args("auto", "always", model="qwen2.5-coder-0.5b")).first_turn_question is True
    assert judge_of(args("auto", "unsure")).first_turn_question == "unsure"
    assert judge_of(args("auto", "after-results")) == Judge(first_turn_question=False)
    both = judge_of(args(judge_option("1.5"), "unnamed", similarity=0.3))
    assert (both.threshold, both.first_turn_question, both.min_similarity) == (1.5, "unnamed", 0.3)
    assert judge_of(args("auto", None)) == "auto"
    with pytest.raises(UserError, match="--judge-question needs the judge"):
        judge_of(args(None, "unnamed"))
    with pytest.raises(UserError, match="--judge-similarity and --judge-question need the judge"):
        judge_of(args(None, "unnamed", similarity=0.2))
    larger_unsure = judge_of(args("auto", "unsure", model=larger, sure=0.75))
    assert larger_unsure == replace(default_judge(larger), first_turn_question="unsure", sure=0.75)
    with pytest.raises(UserError, match=r"--judge-sure only matters .* --judge-question unsure"):
        judge_of(args("auto", None, model=larger, sure=0.75))
    with pytest.raises(UserError, match="--judge-sure only matters"):
        judge_of(args("auto", "unnamed", sure=0.75))
    with pytest.raises(
        UserError, match="--judge-similarity, --judge-question and --judge-sure need the judge"
    ):
        judge_of(args(None, "unsure", similarity=0.2, sure=0.5))


def test_the_judge_sure_option_takes_a_probability():
    import argparse

    from fncall.cli import probability_option

    assert probability_option("0.75") == 0.75
    assert probability_option("1") == 1.0
    for bad in ("sure", "1.5", "-0.1", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="a probability from 0 to 1"):
            probability_option(bad)
