"""Report figures on a tiny hand-made run: categories, summaries, errors, selection, latency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fncall.evaluate.checker import PASS, Verdict
from fncall.evaluate.report import (
    compare_markdown,
    load_report,
    percentile,
    plot_comparison,
    summarize,
    write_report,
)
from fncall.evaluate.runner import CaseResult
from fncall.types import ToolCall


def result(
    case_id: str,
    category: str,
    ok: bool,
    *,
    calls: list[str] | None = (),  # type: ignore[assignment]
    expected: tuple[str, ...] = (),
    error: str | None = None,
    latency: float = 1.0,
) -> CaseResult:
    verdict = PASS if ok else Verdict(valid=False, error_type=error, detail="x", message="m")  # type: ignore[arg-type]
    return CaseResult(
        id=case_id,
        category=category,
        calls=None if calls is None else tuple(ToolCall(name=n) for n in calls),
        verdict=verdict,
        latency_s=latency,
        expected=expected,
    )


RESULTS = [
    # simple_python: 1 of 2
    result("s0", "simple_python", True, calls=["area"], expected=("area",), latency=1.0),
    result(
        "s1",
        "simple_python",
        False,
        calls=["volume"],
        expected=("area",),
        error="wrong_function",
        latency=2.0,
    ),
    # multiple: 1 of 1; parallel: 0 of 1; parallel_multiple: 1 of 2
    result("m0", "multiple", True, calls=["area"], expected=("area",), latency=3.0),
    result(
        "p0",
        "parallel",
        False,
        calls=["area"],
        expected=("area", "area"),
        error="wrong_count",
        latency=4.0,
    ),
    result(
        "pm0",
        "parallel_multiple",
        True,
        calls=["area", "volume"],
        expected=("area", "volume"),
        latency=5.0,
    ),
    result(
        "pm1",
        "parallel_multiple",
        False,
        calls=None,
        expected=("area", "volume"),
        error="unparseable",
        latency=6.0,
    ),
    # irrelevance: 1 of 2
    result("i0", "irrelevance", True, calls=[], latency=7.0),
    result(
        "i1", "irrelevance", False, calls=["volume"], error="called_when_should_not", latency=8.0
    ),
    # live: simple 1/1, multiple 0/3 -> weighted 1/4
    result("ls0", "live_simple", True, calls=["area"], expected=("area",), latency=9.0),
    *[
        result(
            f"lm{i}",
            "live_multiple",
            False,
            calls=["area"],
            expected=("volume",),
            error="wrong_function",
            latency=10.0,
        )
        for i in range(3)
    ],
]


def test_category_and_summary_figures() -> None:
    report = summarize(RESULTS, name="tiny")
    assert report.n == 12 and report.correct == 5
    assert report.categories["simple_python"] == (1, 2)
    assert report.categories["live_multiple"] == (0, 3)
    assert list(report.categories)[:2] == ["simple_python", "multiple"]  # BFCL order
    # Non-live AST: unweighted mean of simple 50, multiple 100, parallel 0, parallel_multiple 50.
    assert report.summary["non_live_ast"] == pytest.approx(0.5)
    assert report.summary["non_live_with_irrelevance"] == pytest.approx(
        (0.5 + 1 + 0 + 0.5 + 0.5) / 5
    )
    assert report.summary["irrelevance"] == pytest.approx(0.5)
    # Live AST needs all four live AST categories; live_parallel(_multiple) were not run.
    assert "live_ast" not in report.summary and "live_irrelevance" not in report.summary
    complete = summarize(
        [
            *RESULTS,
            result("lp0", "live_parallel", True, calls=["area"], expected=("area",)),
            result("lpm0", "live_parallel_multiple", False, calls=[], expected=("area",)),
        ]
    )
    # Weighted by cases: (1 + 0 + 1 + 0) correct of (1 + 3 + 1 + 1).
    assert complete.summary["live_ast"] == pytest.approx(2 / 6)
    partial = summarize([r for r in RESULTS if r.category != "parallel"])
    assert "non_live_ast" not in partial.summary and "overall" in partial.summary


def test_error_taxonomy_counts() -> None:
    report = summarize(RESULTS)
    assert report.errors == {
        "wrong_function": 4,
        "wrong_count": 1,
        "unparseable": 1,
        "called_when_should_not": 1,
    }


def test_decisions_and_call_counts() -> None:
    report = summarize(RESULTS)
    # pm1's unparseable output counts as a call; i1 called where no call was needed.
    assert report.decisions == {
        "call": {"called": 10, "abstained": 0},
        "no_call": {"called": 1, "abstained": 1},
    }
    assert report.call_count == {"right": 8, "too_few": 1}
    extra = [
        result("p1", "parallel", False, calls=["area"] * 3, expected=("area", "area")),
        result("s2", "simple_python", False, calls=[], expected=("area",)),
    ]
    more = summarize([*RESULTS, *extra])
    assert more.call_count == {"right": 8, "too_few": 1, "too_many": 1}
    assert more.decisions["call"] == {"called": 11, "abstained": 1}
    markdown = more.to_markdown()
    assert "| a call | 11 | 1 |" in markdown and "| no call | 1 | 1 |" in markdown
    assert "too few 1 (10%), right count 8 (80%), too many 1 (10%)" in markdown
    assert more.to_json()["call_count"]["too_many"] == 1


def test_function_selection_scores() -> None:
    report = summarize(RESULTS)
    area, volume = report.functions["area"], report.functions["volume"]
    # area: expected 8 times (s0 s1 m0 p0 p0 pm0 pm1 ls0), rightly called in s0 m0 p0 pm0 ls0
    assert (area.true_positives, area.false_negatives) == (5, 3)
    assert area.false_positives == 3  # the live_multiple cases called area instead of volume
    assert (volume.true_positives, volume.false_positives, volume.false_negatives) == (1, 2, 4)
    assert volume.precision == pytest.approx(1 / 3) and volume.recall == pytest.approx(1 / 5)
    assert volume.f1 == pytest.approx(2 * (1 / 3) * (1 / 5) / (1 / 3 + 1 / 5))
    selection = report.selection()
    assert selection["precision"] == pytest.approx(6 / 11)
    assert selection["recall"] == pytest.approx(6 / 13)


def test_latency_percentiles() -> None:
    report = summarize(RESULTS)
    assert report.latency["p50"] == pytest.approx(6.5)  # between the 6th and 7th of 12
    assert report.latency["p90"] == pytest.approx(10.0)
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([5.0], 99) == 5.0 and percentile([], 50) == 0.0


def test_markdown_json_and_files(tmp_path: Path) -> None:
    report = summarize(RESULTS, name="tiny")
    text = report.to_markdown()
    for heading in (
        "## Summary (BFCL)",
        "## Per category",
        "## Errors",
        "## Function selection",
        "## Latency",
    ):
        assert heading in text
    assert "| Non-live AST (simple_python, multiple, parallel, parallel_multiple) | 50.0% |" in text
    assert "| did not call when it should |" not in text and "| wrong function | 4 |" in text
    data = json.loads(json.dumps(report.to_json()))
    assert data["categories"]["parallel"] == {"cases": 1, "correct": 0, "accuracy": 0.0}
    markdown, data_path = write_report(report, tmp_path)
    assert markdown.read_text() == text and json.loads(data_path.read_text())["cases"] == 12


def test_load_report_and_compare_chart(tmp_path: Path) -> None:
    for name, flip in (("base", False), ("tuned", True)):
        folder = tmp_path / name
        folder.mkdir()
        rows = [r.to_json() for r in RESULTS]
        if flip:
            rows = [{**row, "valid": True, "error_type": None} for row in rows]
        (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    base, tuned = load_report(tmp_path / "base"), load_report(tmp_path / "tuned")
    assert base.name == "base" and tuned.accuracy == 1.0
    table = compare_markdown([base, tuned])
    assert "| | base | tuned |" in table and "| simple_python | 50.0% | 100.0% |" in table
    chart = plot_comparison([base, tuned], tmp_path / "chart.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000


def judged(case_id: str, category: str, scores: dict[str, float], *, grounding: float = 1.0,
           draft_valid: bool = True, repeated: bool = False) -> CaseResult:  # fmt: skip
    """A case the judge decided at threshold 0.4 (grounding 0.2), as the runner records it."""
    kept = not repeated and grounding >= 0.2 and any(s >= 0.4 for s in scores.values())
    needs_call = category != "irrelevance"
    ok = (kept and draft_valid) if needs_call else not kept
    decision = {"grounding": grounding, "scores": scores, "kept": kept, "threshold": 0.4,
                "min_grounding": 0.2, "repeated": repeated, "draft_valid": draft_valid}  # fmt: skip
    base = result(case_id, category, ok, calls=["area"] if kept else [], expected=("area",))
    return CaseResult(**{**base.__dict__, "decision": decision})


def test_decision_curve_sweeps_the_judge_over_the_recorded_drafts(tmp_path: Path) -> None:
    results = [
        judged("s0", "simple_python", {"area": 1.5}),
        judged("s1", "simple_python", {"area": 0.1}),  # dropped at 0.4, right at 0 and below
        judged("s2", "simple_python", {"area": 0.9}, draft_valid=False),
        judged("i0", "irrelevance", {"area": 0.6}),  # a wrong call kept at 0.4, dropped at 1
        judged("i1", "irrelevance", {"area": -2.0}),
        judged("i2", "irrelevance", {"area": 3.0}, grounding=0.0),  # grounding drops it always
        result("i3", "irrelevance", True, calls=[]),  # answered in text: never judged
    ]
    report = summarize(results)
    curve = {p["threshold"]: p for p in report.decision_curve}
    run = curve[0.4]
    assert run["run"] and sum(p["run"] for p in report.decision_curve) == 1
    # At the run's own threshold the curve is the run: 1 of 3 right, 3 of 4 abstained.
    assert run["call_accuracy_pct"] == pytest.approx(100 * 1 / 3)
    assert run["abstained_pct"] == pytest.approx(75.0)
    assert report.category_accuracy("simple_python") == pytest.approx(1 / 3)
    assert curve[0.0]["call_accuracy_pct"] == pytest.approx(200 / 3)  # s1 kept too
    assert curve[None]["abstained_pct"] == pytest.approx(50.0)  # question off: i0, i1 call
    assert curve[1.0]["abstained_pct"] == 100.0 and curve[1.0]["call_accuracy_pct"] == 100 / 3
    markdown = report.to_markdown()
    assert "| 0.4 (this run) | 75.0% | 33.3% |" in markdown
    assert "| no question (grounding only) | 50.0% | 66.7% |" in markdown
    write_report(report, tmp_path)
    assert (tmp_path / "decisions.png").read_bytes().startswith(b"\x89PNG")
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["decision_curve"][0]["threshold"] is None  # no question: JSON has no -inf
    # Results from before decisions were recorded (or a remote model): no curve, no chart.
    plain = summarize(RESULTS)
    assert plain.decision_curve == [] and "judge's threshold swept" not in plain.to_markdown()


def test_a_repeated_draft_is_no_call_at_any_threshold() -> None:
    # After tool results the judge answers a repeat without asking (Decision.repeated); no
    # threshold of the question turns it back into a call.
    report = summarize([judged("i0", "irrelevance", {}, repeated=True),
                        judged("s0", "simple_python", {"area": 1.5})])  # fmt: skip
    assert all(p["abstained_pct"] == 100.0 for p in report.decision_curve)
    assert {p["call_accuracy_pct"] for p in report.decision_curve if p["threshold"] is None
            or p["threshold"] <= 1.5} == {100.0}  # fmt: skip


def test_drafts_the_question_did_not_decide_keep_their_verdict_at_every_threshold() -> None:
    """The default model skips the question on first turns (``Judge(first_turn_question=
    False)``): its grounded drafts are kept with no scores, and the curve must not count them
    as abstentions at any threshold (that would not reproduce the run)."""

    def unasked(case_id: str, category: str, draft_valid: bool) -> CaseResult:
        decision = {"grounding": 1.0, "scores": {}, "kept": True, "threshold": 0.4,
                    "min_grounding": 0.2, "repeated": False, "question": False,
                    "draft_valid": draft_valid}  # fmt: skip
        ok = draft_valid if category != "irrelevance" else False
        base = result(case_id, category, ok, calls=["area"], expected=("area",))
        return CaseResult(**{**base.__dict__, "decision": decision})

    results = [
        unasked("s0", "simple_python", True),
        unasked("s1", "simple_python", False),
        unasked("i0", "irrelevance", False),
        result("i1", "irrelevance", True, calls=[]),
    ]
    report = summarize(results)
    for point in report.decision_curve:
        assert point["call_accuracy_pct"] == 50.0 and point["abstained_pct"] == 50.0, point
