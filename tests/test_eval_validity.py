"""Well-formed outputs: parse + offered function + strict schema validation, per case and run."""

from __future__ import annotations

import json
from pathlib import Path

from fncall.evaluate.checker import PASS
from fncall.evaluate.data import make_case
from fncall.evaluate.report import compare_markdown, load_report
from fncall.evaluate.runner import CaseResult
from fncall.evaluate.validity import form_problem
from fncall.types import ToolCall

ENTRY = {
    "id": "simple_python_0",
    "question": [[{"role": "user", "content": "Factorial of 5 and the area of a 3x4 box?"}]],
    "function": [
        {
            "name": "math.factorial",
            "description": "Factorial.",
            "parameters": {
                "type": "dict",
                "properties": {"n": {"type": "integer", "description": "number"}},
                "required": ["n"],
            },
        },
        {
            "name": "area",
            "description": "Area.",
            "parameters": {
                "type": "dict",
                "properties": {
                    "w": {"type": "float", "description": "width"},
                    "unit": {"type": "string", "enum": ["m", "cm"], "description": "unit"},
                },
                "required": ["w"],
            },
        },
    ],
}
CASE = make_case(ENTRY, "simple_python")


def test_form_problems_name_what_is_wrong() -> None:
    good = [
        ToolCall(name="math.factorial", arguments={"n": 5}),
        ToolCall(name="area", arguments={"w": 3}),
    ]
    assert form_problem(CASE, good) is None  # original dotted name; an int is a valid number
    assert form_problem(CASE, []) is None  # a plain-text answer is well formed
    assert form_problem(CASE, None) == "the output did not parse"
    assert "'volume' is not one of the offered functions" in str(
        form_problem(CASE, [ToolCall(name="volume", arguments={})])
    )
    assert form_problem(CASE, [ToolCall(name="math.factorial", arguments={"n": "5"})])
    assert form_problem(CASE, [ToolCall(name="area", arguments={"w": 3, "unit": "km"})])
    assert form_problem(CASE, [ToolCall(name="area", arguments={"w": 1, "depth": 2})])
    assert form_problem(CASE, [ToolCall(name="area", arguments={})])  # w is required


def test_run_report_counts_well_formed_outputs(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    data.mkdir()
    (data / "BFCL_v4_simple_python.json").write_text(json.dumps(ENTRY) + "\n")
    answers = data / "possible_answer"
    answers.mkdir()
    (answers / "BFCL_v4_simple_python.json").write_text(
        json.dumps({"id": "simple_python_0", "ground_truth": [{"area": {"w": [3]}}]}) + "\n"
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").write_text(json.dumps({"data_dir": str(data)}))
    rows = [
        CaseResult(
            id="simple_python_0",
            category="simple_python",
            calls=(ToolCall(name="area", arguments={"w": "wide"}),),
            verdict=PASS,
        ),
        CaseResult(id="simple_python_0", category="simple_python", calls=None, verdict=PASS),
        CaseResult(
            id="simple_python_0",
            category="simple_python",
            calls=(ToolCall(name="area", arguments={"w": 2.5}),),
            verdict=PASS,
        ),
    ]
    (run / "results.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in rows))
    report = load_report(run)
    assert report.well_formed == {"simple_python": (1, 3)}
    assert report.to_json()["well_formed"]["simple_python"]["well_formed"] == 1
    assert "1 of 3 outputs (33.3%) parsed" in report.to_markdown()
    assert "| well-formed outputs | 1/3 |" in compare_markdown([report])


def test_report_marks_an_unfinished_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "possible_answer").mkdir(parents=True)
    entries = [{**ENTRY, "id": f"simple_python_{i}"} for i in range(3)]
    (data / "BFCL_v4_simple_python.json").write_text("".join(json.dumps(e) + "\n" for e in entries))
    (data / "possible_answer" / "BFCL_v4_simple_python.json").write_text(
        "".join(
            json.dumps({"id": e["id"], "ground_truth": [{"area": {"w": [3]}}]}) + "\n"
            for e in entries
        )
    )
    run = tmp_path / "run"
    run.mkdir()
    meta = {"categories": ["simple_python"], "limit": None, "seed": 0, "data_dir": str(data)}
    (run / "meta.json").write_text(json.dumps(meta))

    def write(n: int) -> None:
        rows = [
            CaseResult(
                id=f"simple_python_{i}",
                category="simple_python",
                calls=(ToolCall(name="area", arguments={"w": 3}),),
                verdict=PASS,
            )
            for i in range(n)
        ]
        (run / "results.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in rows))

    write(1)
    partial = load_report(run)
    assert partial.planned == {"simple_python": 3} and partial.unfinished
    assert "**Unfinished:** 1 of the 3 planned cases" in partial.to_markdown()
    assert "| simple_python | 1 of 3 | 1 | 100.0% |" in partial.to_markdown()
    assert "| cases scored (unfinished runs) | 1 of 3 |" in compare_markdown([partial])

    write(3)
    done = load_report(run)
    assert not done.unfinished
    assert "Unfinished" not in done.to_markdown()
    assert "cases scored" not in compare_markdown([done])

    (run / "meta.json").write_text(json.dumps({"data_dir": str(data)}))  # no categories: no claim
    assert load_report(run).planned == {}
