"""Scores of an evaluation run: per category, BFCL's summary figures, errors, function selection,
latency; as Markdown, JSON, and a bar chart comparing runs side by side.

Summary figures follow BFCL's leaderboard: non-live AST is the unweighted mean of simple (here
``simple_python``: the Python-only variant), multiple, parallel and parallel_multiple; live AST is
the mean of the live AST categories weighted by their number of cases. Irrelevance is reported on
its own, and in ``non_live_with_irrelevance`` (the mean of the five non-live categories). A
summary is given only when all its categories were run; ``overall`` is the unweighted mean of
the categories that were.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fncall.errors import UserError
from fncall.evaluate.checker import ERROR_TYPES
from fncall.evaluate.data import CATEGORIES, IRRELEVANCE_CATEGORIES, LIVE, NON_LIVE, load_cases
from fncall.evaluate.runner import CaseResult, read_results

RESULTS_FILE = "results.jsonl"


@dataclass(frozen=True, kw_only=True)
class FunctionScore:
    """How well the model picked one function: calls matched by name, case by case."""

    name: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def support(self) -> int:
        return self.true_positives + self.false_negatives

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.support if self.support else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True, kw_only=True)
class Report:
    name: str
    n: int
    correct: int
    categories: dict[str, tuple[int, int]]  # category -> (correct, cases)
    summary: dict[str, float]
    errors: dict[str, int]
    functions: dict[str, FunctionScore]
    latency: dict[str, float]
    # category -> (well-formed outputs, cases): parsed, and every call fits the offered schemas
    well_formed: dict[str, tuple[int, int]] = field(default_factory=dict)
    # category -> cases the run set out to score (from its meta.json); more than scored: unfinished
    planned: dict[str, int] = field(default_factory=dict)
    # the call / no-call decision: {"call": {"called": k, "abstained": k}, "no_call": {...}}
    decisions: dict[str, dict[str, int]] = field(default_factory=dict)
    # cases needing calls that made some: how many calls against how many expected
    call_count: dict[str, int] = field(default_factory=dict)  # too_few / right / too_many
    # the judge's threshold swept over this run's drafts (``decision_curve``); empty if unjudged
    decision_curve: list[dict[str, Any]] = field(default_factory=list)

    @property
    def planned_total(self) -> int | None:
        return sum(self.planned.values()) if self.planned else None

    @property
    def unfinished(self) -> bool:
        total = self.planned_total
        return total is not None and total > self.n

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def well_formed_total(self) -> tuple[int, int]:
        """(well-formed outputs, cases) over every category checked."""
        return (
            sum(ok for ok, _ in self.well_formed.values()),
            sum(n for _, n in self.well_formed.values()),
        )

    def category_accuracy(self, category: str) -> float | None:
        correct, total = self.categories.get(category, (0, 0))
        return correct / total if total else None

    def selection(self) -> dict[str, float]:
        """Micro-averaged precision / recall / F1 of function selection, and macro F1."""
        tp = sum(f.true_positives for f in self.functions.values())
        fp = sum(f.false_positives for f in self.functions.values())
        fn = sum(f.false_negatives for f in self.functions.values())
        total = FunctionScore(name="*", true_positives=tp, false_positives=fp, false_negatives=fn)
        supported = [f.f1 for f in self.functions.values() if f.support]
        return {
            "precision": total.precision,
            "recall": total.recall,
            "f1": total.f1,
            "macro_f1": sum(supported) / len(supported) if supported else 0.0,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cases": self.n,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "categories": {
                c: {"cases": n, "correct": ok, "accuracy": ok / n}
                for c, (ok, n) in self.categories.items()
            },
            "summary": self.summary,
            "errors": self.errors,
            "function_selection": self.selection(),
            "functions": {
                f.name: {
                    "precision": f.precision,
                    "recall": f.recall,
                    "f1": f.f1,
                    "support": f.support,
                    "tp": f.true_positives,
                    "fp": f.false_positives,
                    "fn": f.false_negatives,
                }
                for f in self.functions.values()
            },
            "latency_s": self.latency,
            "well_formed": {
                c: {"cases": n, "well_formed": ok, "share": ok / n}
                for c, (ok, n) in self.well_formed.items()
            },
            "planned": self.planned,
            "decisions": self.decisions,
            "call_count": self.call_count,
            "decision_curve": self.decision_curve,
        }

    def _cases_cell(self, category: str, scored: int) -> str:
        planned = self.planned.get(category, scored)
        return f"{scored} of {planned}" if planned > scored else str(scored)

    def to_markdown(self, *, worst_functions: int = 10) -> str:
        lines = [f"# Evaluation: {self.name}", ""]
        lines.append(f"{self.n} cases, {self.correct} correct ({self.accuracy:.1%}).")
        if self.unfinished:
            lines += [
                "",
                f"**Unfinished:** {self.n} of the {self.planned_total} planned cases are scored; "
                "run the same `fncall eval run` command again to finish (it resumes).",
            ]
        lines += ["", "## Summary (BFCL)", "", "| figure | accuracy |", "|---|---:|"]
        lines += [f"| {SUMMARY_LABELS.get(k, k)} | {v:.1%} |" for k, v in self.summary.items()]
        lines += [
            "",
            "## Per category",
            "",
            "| category | cases | correct | accuracy |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {c} | {self._cases_cell(c, n)} | {ok} | {ok / n:.1%} |"
            for c, (ok, n) in self.categories.items()
        ]
        if self.well_formed:
            ok, n = self.well_formed_total
            lines += [
                "",
                "## Well-formed outputs",
                "",
                f"{ok} of {n} outputs ({ok / n:.1%}) parsed, and every call in them names an "
                "offered function with arguments its schema accepts (strict, no coercion); "
                "plain-text answers count as well formed.",
                "",
                "| category | well formed | cases |",
                "|---|---:|---:|",
            ]
            lines += [f"| {c} | {k} | {m} |" for c, (k, m) in self.well_formed.items()]
        lines += self._decision_markdown()
        failures = self.n - self.correct
        lines += ["", "## Errors", ""]
        if failures:
            lines += ["| error | count | share of failures |", "|---|---:|---:|"]
            lines += [
                f"| {ERROR_TYPES.get(e, e)} | {k} | {k / failures:.1%} |"
                for e, k in sorted(self.errors.items(), key=lambda item: -item[1])
            ]
        else:
            lines.append("No failures.")
        sel = self.selection()
        lines += [
            "",
            "## Function selection",
            "",
            f"Micro precision {sel['precision']:.1%}, recall {sel['recall']:.1%}, "
            f"F1 {sel['f1']:.1%}; macro F1 {sel['macro_f1']:.1%} over "
            f"{sum(1 for f in self.functions.values() if f.support)} expected functions.",
        ]
        worst = sorted(
            (f for f in self.functions.values() if f.f1 < 1.0),
            key=lambda f: (f.f1, -f.support - f.false_positives, f.name),
        )
        if worst:
            lines += [
                "",
                "| function | precision | recall | F1 | support | wrongly called |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            lines += [
                f"| `{f.name}` | {f.precision:.2f} | {f.recall:.2f} | {f.f1:.2f} | "
                f"{f.support} | {f.false_positives} |"
                for f in worst[:worst_functions]
            ]
        if self.latency:
            lat = self.latency
            lines += [
                "",
                "## Latency",
                "",
                f"p50 {lat['p50']:.2f} s, p90 {lat['p90']:.2f} s, p99 {lat['p99']:.2f} s, "
                f"mean {lat['mean']:.2f} s per case.",
            ]
        return "\n".join(lines) + "\n"

    def _decision_markdown(self) -> list[str]:
        need, none = self.decisions.get("call", {}), self.decisions.get("no_call", {})
        if not need and not none:
            return []
        lines = [
            "",
            "## Decisions",
            "",
            "Whether the model called at all (an unparseable output counts as a call), against",
            "whether the case needs a call (irrelevance categories need none):",
            "",
            "| case needs | called | abstained |",
            "|---|---:|---:|",
        ]
        for label, row in (("a call", need), ("no call", none)):
            if row:
                lines.append(f"| {label} | {row['called']} | {row['abstained']} |")
        count = self.call_count
        if count:
            total = sum(count.values())
            lines += [
                "",
                f"How many calls, in the {total} cases that needed calls and made some: "
                + ", ".join(
                    f"{label} {count.get(key, 0)} ({count.get(key, 0) / total:.0%})"
                    for key, label in (
                        ("too_few", "too few"),
                        ("right", "right count"),
                        ("too_many", "too many"),
                    )
                )
                + ".",
            ]
        if self.decision_curve:
            run = next(p for p in self.decision_curve if p.get("run"))
            lines += [
                "",
                "The judge's threshold swept over this run's drafts (grounding fixed at "
                f"{run['min_grounding']:g}; `decisions.png`): abstained on cases needing no call,",
                "accuracy on cases needing calls. Above the run's threshold a draft calling",
                "several functions counts by those the judge asked about (a lower bound).",
                "",
                "| judge threshold | abstained | accuracy where calls are needed |",
                "|---|---:|---:|",
            ]
            shown = [p for p in self.decision_curve if p.get("run") or p["threshold"] in _SHOWN]
            for point in shown:
                label = _threshold_label(point["threshold"]) + (
                    " (this run)" if point.get("run") else ""
                )
                shares = f"{point['abstained_pct']:.1f}% | {point['call_accuracy_pct']:.1f}%"
                lines.append(f"| {label} | {shares} |")
        return lines


SUMMARY_LABELS = {
    "non_live_ast": "Non-live AST (simple_python, multiple, parallel, parallel_multiple)",
    "non_live_with_irrelevance": "Non-live with irrelevance (mean of 5)",
    "live_ast": "Live AST (weighted by cases)",
    "irrelevance": "Irrelevance",
    "live_irrelevance": "Live irrelevance",
    "overall": "Overall (mean of categories)",
}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linearly interpolated between order statistics."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


def summarize(results: Iterable[CaseResult], *, name: str = "run") -> Report:
    """Score a run's case results."""
    results = list(results)
    totals: dict[str, list[int]] = {}
    errors: Counter[str] = Counter()
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for result in results:
        counts = totals.setdefault(result.category, [0, 0])
        counts[0] += result.verdict.valid
        counts[1] += 1
        if not result.verdict.valid:
            errors[result.verdict.error_type or "unknown"] += 1
        expected = Counter(result.expected)
        called = Counter(c.name for c in result.calls or ())
        for function in expected | called:
            hit = min(expected[function], called[function])
            tp[function] += hit
            fp[function] += called[function] - hit
            fn[function] += expected[function] - hit
    order = {c: i for i, c in enumerate(CATEGORIES)}
    categories = {
        c: (ok, n)
        for c, (ok, n) in sorted(totals.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))
    }
    accuracy = {c: ok / n for c, (ok, n) in categories.items()}
    summary: dict[str, float] = {}
    # Like BFCL, a summary needs every one of its categories: a partial mean would mislead.
    figures = {
        "non_live_ast": _mean(accuracy[c] for c in NON_LIVE)
        if all(c in accuracy for c in NON_LIVE)
        else None,
        "non_live_with_irrelevance": _mean(accuracy[c] for c in (*NON_LIVE, "irrelevance"))
        if all(c in accuracy for c in (*NON_LIVE, "irrelevance"))
        else None,
        "live_ast": _weighted([categories[c] for c in LIVE])
        if all(c in categories for c in LIVE)
        else None,
        "irrelevance": accuracy.get("irrelevance"),
        "live_irrelevance": accuracy.get("live_irrelevance"),
        "overall": _mean(accuracy.values()),
    }
    summary = {k: v for k, v in figures.items() if v is not None}
    latencies = [r.latency_s for r in results]
    latency = {}
    if latencies:
        latency = {
            "p50": percentile(latencies, 50),
            "p90": percentile(latencies, 90),
            "p99": percentile(latencies, 99),
            "mean": sum(latencies) / len(latencies),
        }
    functions = {
        f: FunctionScore(name=f, true_positives=tp[f], false_positives=fp[f], false_negatives=fn[f])
        for f in sorted(set(tp) | set(fp) | set(fn))
    }
    decisions, call_count = _decisions(results)
    return Report(
        decision_curve=decision_curve(results),
        name=name,
        n=len(results),
        correct=sum(r.verdict.valid for r in results),
        categories=categories,
        summary=summary,
        errors=dict(errors),
        functions=functions,
        latency=latency,
        decisions=decisions,
        call_count=call_count,
    )


def _decisions(results: Sequence[CaseResult]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """The call / no-call confusion counts and, where calls were needed and made, their count."""
    decisions: dict[str, dict[str, int]] = {}
    count: Counter[str] = Counter()
    for result in results:
        needs = "no_call" if result.category in IRRELEVANCE_CATEGORIES else "call"
        called = result.calls is None or bool(result.calls)
        row = decisions.setdefault(needs, {"called": 0, "abstained": 0})
        row["called" if called else "abstained"] += 1
        if needs == "call" and result.calls:
            made, expected = len(result.calls), len(result.expected)
            count[
                "right" if made == expected else "too_few" if made < expected else "too_many"
            ] += 1
    return decisions, dict(count)


_SHOWN = (None, -1.0, 0.0, 1.0, 2.0)  # the curve's points the Markdown lists
CURVE_THRESHOLDS = (-math.inf, *(step / 4 for step in range(-16, 17)))


def _threshold_label(threshold: float | None) -> str:
    return "no question (grounding only)" if threshold is None else f"{threshold:g}"


def decision_curve(results: Sequence[CaseResult]) -> list[dict[str, Any]]:
    """What the run would have scored at other judge thresholds, from its recorded drafts: per
    threshold, the share of no-call cases that abstain and the accuracy on cases needing calls.
    A judged draft counts as called at ``t`` when its grounding reached the run's
    ``min_grounding`` and a scored function reached ``t``; then it is right when the draft was
    (``draft_valid``), and a draft not called is a text answer. Cases the judge did not see
    (text answers, unparseable output) keep their verdicts, and so do drafts the question did
    not decide (``question``: false; grounding alone kept them, whatever the threshold). The
    run's own threshold is a point of the curve (``run``: true) and reproduces its figures.
    Empty when nothing was judged."""
    judged = [r.decision for r in results if r.decision is not None]
    if not judged:
        return []
    first = judged[0]
    thresholds = sorted({*CURVE_THRESHOLDS, float(first["threshold"])})
    points = []
    for threshold in thresholds:
        abstained = none = right = need = 0
        for result in results:
            decision = result.decision
            if decision is not None:
                called = (
                    not decision.get("repeated", False)
                    and decision["grounding"] >= decision["min_grounding"]
                    and (
                        not decision.get("question", True)
                        or any(score >= threshold for score in decision["scores"].values())
                    )
                )
                valid = called and bool(decision["draft_valid"])
            else:
                called = result.calls is None or bool(result.calls)
                valid = result.verdict.valid
            if result.category in IRRELEVANCE_CATEGORIES:
                none += 1
                abstained += not called
            else:
                need += 1
                right += valid
        points.append(
            {
                "threshold": None if threshold == -math.inf else threshold,  # None: no question
                "min_grounding": float(first["min_grounding"]),
                "abstained_pct": 100 * abstained / none if none else 0.0,
                "call_accuracy_pct": 100 * right / need if need else 0.0,
                "run": threshold == float(first["threshold"]),
            }
        )
    return points


def plot_decision_curve(report: Report, out_path: str | Path) -> Path:
    """A PNG: abstention on no-call cases against accuracy where calls are needed, over the
    judge's threshold (``Report.decision_curve``), the run's own setting marked."""
    if not report.decision_curve:
        raise UserError(f"run {report.name!r} recorded no judge decisions (judge off or remote)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = report.decision_curve
    figure, axes = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    xs = [p["call_accuracy_pct"] for p in points]
    ys = [p["abstained_pct"] for p in points]
    axes.plot(xs, ys, marker=".", linewidth=1)
    for point in points:
        if point.get("run") or point["threshold"] in _SHOWN:
            label = _threshold_label(point["threshold"])
            axes.annotate(
                label,
                (point["call_accuracy_pct"], point["abstained_pct"]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
    run = next(p for p in points if p.get("run"))
    axes.plot(
        [run["call_accuracy_pct"]],
        [run["abstained_pct"]],
        "o",
        color="#d62728",
        label=f"this run (threshold {run['threshold']:g})",
    )
    axes.set_xlabel("accuracy on cases needing calls (%)")
    axes.set_ylabel("abstained on cases needing no call (%)")
    axes.set_xlim(0, 100)
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower left")
    figure.suptitle(f"Call or abstain over the judge threshold: {report.name}", fontsize=10)
    figure.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path)
    plt.close(figure)
    return out_path


def _weighted(counts: Sequence[tuple[int, int]]) -> float | None:
    total = sum(n for _, n in counts)
    return sum(ok for ok, _ in counts) / total if total else None


def results_path(run: str | Path) -> Path:
    """The results file of a run: the folder's ``results.jsonl``, or the file itself."""
    path = Path(run)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise UserError(
            f"no evaluation results at {run} (expected a run folder with "
            f"{RESULTS_FILE}, made by `fncall eval run --out {run}`)"
        )
    return path


def load_report(run: str | Path, *, name: str | None = None) -> Report:
    """Score a run folder (or a results file); the name defaults to the folder's name.

    A run folder's ``meta.json`` says where its cases came from, so the report also checks that
    every output is well formed (``fncall.evaluate.validity``)."""
    from fncall.evaluate.validity import cases_by_id, well_formed_counts

    path = results_path(run)
    label = name or (path.parent.name if path.name == RESULTS_FILE else path.stem)
    results = read_results(path)
    report = summarize(results, name=label)
    meta_file = path.parent / "meta.json"
    if not meta_file.is_file() or not results:
        return report
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    categories = sorted({r.category for r in results})
    cases = cases_by_id(categories, meta.get("data_dir"))
    counts = well_formed_counts(results, cases)
    ordered = {c: counts[c] for c in report.categories if c in counts}
    return replace(report, well_formed=ordered, planned=_planned(meta))


def _planned(meta: dict[str, Any]) -> dict[str, int]:
    """Cases per category that the run described by ``meta`` sets out to score."""
    try:
        cases = load_cases(
            meta["categories"],
            limit=meta.get("limit"),
            seed=meta.get("seed", 0),
            data_dir=meta.get("data_dir"),
            ids=meta.get("ids"),
        )
    except (KeyError, TypeError, UserError):
        return {}  # a meta.json from elsewhere: score what is there, claim nothing about the rest
    planned: dict[str, int] = {}
    for case in cases:
        planned[case.category] = planned.get(case.category, 0) + 1
    return planned


def write_report(report: Report, folder: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.json`` into ``folder`` (and ``decisions.png``, the
    decision curve, when the judge's decisions were recorded)."""
    folder = Path(folder)
    markdown, data = folder / "report.md", folder / "report.json"
    if report.decision_curve:
        plot_decision_curve(report, folder / "decisions.png")
    markdown.write_text(report.to_markdown(), encoding="utf-8")
    data.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    return markdown, data


def compare_markdown(reports: Sequence[Report]) -> str:
    """One table: categories and summary figures as rows, runs as columns."""
    categories = [c for c in CATEGORIES if any(c in r.categories for r in reports)]
    header = "| | " + " | ".join(r.name for r in reports) + " |"
    lines = [header, "|---|" + "---:|" * len(reports)]
    for category in categories:
        cells = [_cell(r.category_accuracy(category)) for r in reports]
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    for key, label in SUMMARY_LABELS.items():
        if any(key in r.summary for r in reports):
            cells = [_cell(r.summary.get(key)) for r in reports]
            lines.append(f"| **{label}** | " + " | ".join(cells) + " |")
    if any(r.unfinished for r in reports):
        cells = [f"{r.n} of {r.planned_total}" if r.unfinished else str(r.n) for r in reports]
        lines.append("| cases scored (unfinished runs) | " + " | ".join(cells) + " |")
    if any(r.well_formed for r in reports):
        totals = [r.well_formed_total for r in reports]
        cells = [f"{ok}/{n}" if n else "–" for ok, n in totals]
        lines.append("| well-formed outputs | " + " | ".join(cells) + " |")
    lines.append(
        "| p50 latency | "
        + " | ".join(f"{r.latency['p50']:.2f} s" if r.latency else "–" for r in reports)
        + " |"
    )
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def plot_comparison(reports: Sequence[Report], out_path: str | Path) -> Path:
    """A PNG bar chart: per-category accuracy (and non-live AST) for each run side by side."""
    if not reports:
        raise UserError("plot_comparison needs at least one run")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [c for c in CATEGORIES if any(c in r.categories for r in reports)]
    extra = [k for k in ("non_live_ast", "live_ast") if any(k in r.summary for r in reports)]
    labels = [*groups, *(k.replace("_ast", " AST").replace("_", "-") for k in extra)]
    width = 0.8 / len(reports)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) + 2), 4.8), dpi=120)
    for index, report in enumerate(reports):
        values = [report.category_accuracy(c) for c in groups]
        values += [report.summary.get(k) for k in extra]
        xs = [i + (index - (len(reports) - 1) / 2) * width for i in range(len(labels))]
        heights = [100 * v if v is not None else 0.0 for v in values]
        bars = axes.bar(xs, heights, width * 0.95, label=report.name)
        for bar, value in zip(bars, values, strict=True):
            if value is None:  # not run: say so rather than draw an empty slot like a zero
                x = bar.get_x() + bar.get_width() / 2
                axes.annotate("n/a", (x, 0), ha="center", va="bottom", fontsize=6, color="grey")
            elif len(reports) <= 4:
                axes.annotate(
                    f"{100 * value:.0f}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    if extra:
        axes.axvline(len(groups) - 0.5, color="grey", linewidth=0.8, linestyle="--")
    axes.set_xticks(range(len(labels)))
    axes.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("accuracy (%)")
    axes.set_ylim(0, 109)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    # Legend above the bars, under the title, so it never hides a 100 % bar.
    axes.legend(
        fontsize=8,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncols=min(len(reports), 4),
        frameon=False,
    )
    figure.suptitle("BFCL accuracy by category", fontsize=11)
    figure.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path)
    plt.close(figure)
    return out_path
