"""Evaluation on BFCL-format data: load cases, ask a model, check with BFCL's AST rules, report.

    from fncall.evaluate import load_cases, run_eval, summarize
    cases = load_cases(["simple_python", "irrelevance"], limit=40, seed=0)
    result = run_eval(model, cases, out_path="runs/mine/results.jsonl")
    print(summarize(result.results, name="mine").to_markdown())

matplotlib (for ``plot_comparison``) is imported only when a chart is drawn.
"""

from __future__ import annotations

from fncall.evaluate.checker import ERROR_TYPES, Verdict, check_call, check_calls, check_case
from fncall.evaluate.data import CATEGORIES, Case, load_cases, load_category, sample_cases
from fncall.evaluate.report import (
    Report,
    compare_markdown,
    load_report,
    plot_comparison,
    summarize,
    write_report,
)
from fncall.evaluate.runner import CaseResult, RunResult, probe_endpoint, read_results, run_eval

__all__ = [
    "CATEGORIES",
    "ERROR_TYPES",
    "Case",
    "CaseResult",
    "Report",
    "RunResult",
    "Verdict",
    "check_call",
    "check_calls",
    "check_case",
    "compare_markdown",
    "load_cases",
    "load_category",
    "load_report",
    "plot_comparison",
    "probe_endpoint",
    "read_results",
    "run_eval",
    "sample_cases",
    "summarize",
    "write_report",
]
