"""Training data: import (OpenAI, ShareGPT/Hermes, BFCL), generation, masking, split, guard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fncall.errors import UserError
from fncall.tools import validate_arguments
from fncall.train.contamination import ContaminationGuard, bfcl_guard, evaluation_questions
from fncall.train.data import load_examples, load_file, save_examples, split_examples
from fncall.train.generate import Generator, generate_examples, mask_example
from fncall.train.library import BUILTIN_LIBRARY, builtin_tools

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def _write_lines(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_openai_jsonl_round_trip(tmp_path: Path) -> None:
    record = {
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
        ],
        "tools": [WEATHER],
    }
    (example,) = load_file(_write_lines(tmp_path / "a.jsonl", [record]))
    assert example.tools[0].name == "get_weather"
    assert example.messages[-1].tool_calls[0].arguments == {"city": "Oslo"}
    assert example.question == "Weather in Oslo?"
    save_examples([example], tmp_path / "b.jsonl")
    assert load_file(tmp_path / "b.jsonl")[0].messages == example.messages


def test_sharegpt_hermes_with_tools_in_system_prompt(tmp_path: Path) -> None:
    tools_text = json.dumps(WEATHER["function"])
    record = {
        "conversations": [
            {"from": "system", "value": f"You may call functions. <tools>\n{tools_text}\n</tools>"},
            {"from": "human", "value": "Is it cold in Oslo and Rome?"},
            {
                "from": "gpt",
                "value": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n'
                '</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": '
                '{"city": "Rome"}}\n</tool_call>',
            },
        ]
    }
    (example,) = load_file(_write_lines(tmp_path / "h.jsonl", [record]))
    assert [t.name for t in example.tools] == ["get_weather"]
    assert "<tools>" not in (example.messages[0].content or "")
    assert [c.arguments["city"] for c in example.messages[-1].tool_calls] == ["Oslo", "Rome"]


def test_bfcl_folder_with_answers_and_irrelevance(tmp_path: Path) -> None:
    function = {
        "name": "area",
        "description": "Area of a rectangle",
        "parameters": {
            "type": "dict",
            "properties": {
                "w": {"type": "float"},
                "h": {"type": "float"},
                "unit": {"type": "string"},
            },
            "required": ["w", "h"],
        },
    }
    question = {
        "id": "q_0",
        "question": [[{"role": "user", "content": "Area of 2 by 3?"}]],
        "function": [function],
    }
    (tmp_path / "possible_answer").mkdir()
    _write_lines(tmp_path / "BFCL_x_simple.json", [question])
    _write_lines(
        tmp_path / "possible_answer" / "BFCL_x_simple.json",
        [{"id": "q_0", "ground_truth": [{"area": {"w": [2.0], "h": [3.0], "unit": ["", "m"]}}]}],
    )
    _write_lines(tmp_path / "BFCL_x_irrelevance.json", [{**question, "id": "i_0"}])
    irrelevant, simple = load_examples(tmp_path)  # sorted file order
    assert simple.messages[-1].tool_calls[0].arguments == {"w": 2.0, "h": 3.0}  # "" first: omitted
    assert simple.tools[0].parameters["type"] == "object"
    assert simple.tools[0].parameters["properties"]["w"]["type"] == "number"
    assert not irrelevant.messages[-1].tool_calls and irrelevant.messages[-1].content


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [
                (
                    '{"messages": [{"role": "user", "content": "hi"}, '
                    '{"role": "assistant", "content": "x"}]}'
                ),
                '{"messages": [oops',
            ],
            "bad.jsonl:2: not valid JSON",
        ),
        (
            ['{"messages": [{"role": "user", "content": "hi"}]}'],
            "bad.jsonl:1: .*last message must be",
        ),
        (
            ['{"conversations": [{"from": "robot", "value": "x"}]}'],
            "bad.jsonl:1: turn 0 needs 'from'",
        ),
        (['{"prompt": "x"}'], "bad.jsonl:1: unrecognised record"),
        (
            ['{"conversations": [{"from": "gpt", "value": "<tool_call>{nope</tool_call>"}]}'],
            "bad.jsonl:1: turn 0: <tool_call> body is not JSON",
        ),
    ],
)
def test_malformed_lines_name_file_and_line(
    tmp_path: Path, lines: list[str], expected: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=expected):
        load_file(path)


def test_missing_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_examples(tmp_path / "nope.jsonl")
    with pytest.raises(UserError, match=r"no \.json or \.jsonl"):
        load_examples(tmp_path)


def test_builtin_library_size_and_templates() -> None:
    assert 30 <= len(BUILTIN_LIBRARY) <= 60
    names = [t.name for t in builtin_tools()]
    assert len(set(names)) == len(names)
    for entry in BUILTIN_LIBRARY:
        props = entry.tool.parameters["properties"]
        for template in entry.questions:
            fields = {f for f in props if "{" + f + "}" in template}
            assert set(entry.tool.parameters["required"]) <= fields, (entry.tool.name, template)


def test_generation_is_deterministic_and_consistent() -> None:
    first = generate_examples(200, seed=7)
    assert [e.to_json() for e in first] != [e.to_json() for e in generate_examples(200, seed=8)]
    assert [e.to_json()["messages"][0] for e in first] == [
        e.to_json()["messages"][0] for e in generate_examples(200, seed=7)
    ]
    kinds = {e.source.split(":")[1] for e in first}
    assert kinds == {"simple", "multiple", "parallel", "parallel_multiple", "irrelevance"}
    masked = 0
    for example in first:
        tools = {t.name: t for t in example.tools}
        calls = example.messages[-1].tool_calls
        if example.source.endswith("irrelevance"):
            assert not calls and example.messages[-1].content
        if example.source.endswith(":parallel"):
            assert len(calls) >= 2 and len({c.name for c in calls}) == 1
        for call in calls:  # every gold call fits the (possibly masked) schema it is shown
            assert call.name in tools
            properties = tools[call.name].parameters["properties"]
            assert set(call.arguments) <= set(properties)
            assert set(tools[call.name].parameters["required"]) <= set(call.arguments)
            validate_arguments(tools[call.name], dict(call.arguments), coerce=False)
        masked += sum(t.name not in {x.name for x in builtin_tools()} for t in example.tools)
    assert masked > 0


def test_irrelevance_includes_hard_negatives_with_their_own_tool() -> None:
    from fncall.train.library import NEAR_MISS_QUESTIONS

    names = {f.tool.name for f in BUILTIN_LIBRARY}
    assert set(NEAR_MISS_QUESTIONS) <= names  # every near miss belongs to a library function
    examples = generate_examples(
        300, seed=1, masking_probability=0.0, mix={"irrelevance": 1.0}, max_distractors=2
    )
    hard = []
    for example in examples:
        assert not example.messages[-1].tool_calls and example.messages[-1].content
        question = example.messages[0].content
        offered = {t.name for t in example.tools}
        owners = [n for n, qs in NEAR_MISS_QUESTIONS.items() if question in qs]
        if owners:
            assert owners[0] in offered  # the function it resembles is on offer
            hard.append(example)
    assert 0.2 < len(hard) / len(examples) < 0.45


def test_masking_probability_one_renames_everything() -> None:
    import random

    example = Generator(seed=1, masking_probability=0.0, mix={"simple": 1}).generate(1)[0]
    masked = mask_example(example, random.Random(0), 1.0)
    call, tool = masked.messages[-1].tool_calls[0], masked.tools[0]
    assert call.name == tool.name != example.tools[0].name
    assert set(call.arguments) <= set(tool.parameters["properties"])
    assert list(call.arguments.values()) == list(
        example.messages[-1].tool_calls[0].arguments.values()
    )


def test_user_tools_without_templates_get_generic_questions() -> None:
    from fncall.types import Tool

    tools = [
        Tool(
            name=f"tool_{i}",
            description=f"Do thing number {i}.",
            parameters={
                "type": "object",
                "properties": {"count": {"type": "integer", "description": "How many"}},
                "required": ["count"],
            },
        )
        for i in range(3)
    ]
    examples = generate_examples(20, tools, seed=0, masking_probability=0.0)
    simple = next(e for e in examples if e.source.endswith(":simple"))
    assert str(simple.messages[-1].tool_calls[0].arguments["count"]) in simple.question


def test_split_is_deterministic_and_disjoint() -> None:
    examples = generate_examples(50, seed=0)
    a, b = split_examples(examples, seed=3), split_examples(examples, seed=3)
    assert [e.question for e in a.train] == [e.question for e in b.train]
    assert len(a.train) + len(a.validation) + len(a.test) == 50
    assert len(a.validation) >= 1 and len(a.test) >= 1
    with pytest.raises(UserError):
        split_examples(examples, validation=0.6, test=0.5)


def test_contamination_guard_rejects_bfcl_questions() -> None:
    questions = evaluation_questions()
    assert len(questions) > 5000
    guard = bfcl_guard()
    original = questions[0]
    assert guard.match(original) == original
    assert guard.match("  " + original.upper() + "!! ") == original  # normalised text
    words = original.split()
    reworded = " ".join(["Please,", *words[:-2], "thanks"])  # light rewording
    assert guard.match(reworded) is not None
    assert (
        guard.match("What time is it in Asia/Tokyo?") is None
    )  # a short generic phrase is not enough
    assert guard.match("Plan a seven day sailing trip around volcanic islands with my aunt") is None
    generated = generate_examples(300, seed=0)
    kept, refused = guard.filter(generated)
    assert len(refused) < 15 and len(kept) + len(refused) == 300


def test_guard_filter_names_the_colliding_question() -> None:
    from fncall.train.data import TrainingExample
    from fncall.types import Message

    guard = ContaminationGuard(["Find the distance between two planets in light years please"])
    bad = TrainingExample(
        messages=(
            Message(role="user", content="find the distance between two planets in light years"),
            Message(role="assistant", content="ok"),
        )
    )
    kept, refused = guard.filter([bad])
    assert not kept and refused[0][1].startswith("Find the distance")
