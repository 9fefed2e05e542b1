"""``fncall eval``: score a model on BFCL-format data (``run``), and read the results
(``report``, ``compare``).

A run folder holds ``meta.json`` (what was run), ``results.jsonl`` (one line per case, written
as it goes: rerunning the same command resumes), and ``report.md`` / ``report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from fncall.cli import FIRST_TURN_QUESTIONS, add_judge_argument, judge_of
from fncall.errors import UserError

CATEGORY_GROUPS = {
    "non_live": ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"),
    "live": (
        "live_simple",
        "live_multiple",
        "live_parallel",
        "live_parallel_multiple",
        "live_irrelevance",
    ),
}
DEFAULT_CATEGORIES = CATEGORY_GROUPS["non_live"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="eval_command", metavar="SUBCOMMAND")
    run = commands.add_parser("run", help="evaluate a model; results go to --out as they come")
    source = run.add_argument_group("model (one of --model or --endpoint)")
    source.add_argument(
        "--model",
        help="catalogue model name, .gguf file or Hugging Face folder; "
        "with --endpoint, the model name the server expects",
    )
    source.add_argument(
        "--endpoint", help="base URL of an OpenAI-compatible API (e.g. http://127.0.0.1:8000/v1)"
    )
    source.add_argument(
        "--api-key", default=None, help="API key for --endpoint (default: $OPENAI_API_KEY)"
    )
    run.add_argument(
        "--categories",
        nargs="+",
        default=list(DEFAULT_CATEGORIES),
        metavar="CATEGORY",
        help="BFCL categories, or the groups non_live, live, all "
        f"(default: {' '.join(DEFAULT_CATEGORIES)})",
    )
    run.add_argument("--limit", type=int, default=None, help="N random cases per category")
    run.add_argument("--seed", type=int, default=0, help="seed of the --limit draw (default 0)")
    run.add_argument(
        "--ids",
        nargs="+",
        default=None,
        metavar="ID",
        help="only these cases (e.g. parallel_18), from the --categories they belong to",
    )
    run.add_argument(
        "--constrained",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="constrained decoding for a local model (default: the model's default)",
    )
    run.add_argument(
        "--format",
        default="auto",
        help="tool-call format of a local model: auto or a registered format, built-in or a "
        "plugin's (default: auto)",
    )
    run.add_argument("--max-tokens", type=int, default=None, help="generation limit per case")
    run.add_argument(
        "--text-max-tokens",
        type=int,
        default=None,
        metavar="N",
        help="with --constrained, stop a plain-text answer after N tokens: the score only needs "
        "to know that no function was called (calls keep --max-tokens)",
    )
    add_judge_argument(run)
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="cases asked at once: threads for an --endpoint; for a local --model, processes "
        "that each load their own copy (with $FNCALL_THREADS threads each if set, else an equal "
        "share of the cores)",
    )
    run.add_argument(
        "--data-dir",
        default=None,
        help="folder of BFCL_v4_<category>.json files (default: bfcl-eval's data)",
    )
    run.add_argument("--out", required=True, help="run folder, e.g. runs/qwen-0.5b")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    report = commands.add_parser("report", help="score a run folder; writes report.md/.json")
    report.add_argument("run", help="run folder (or its results.jsonl)")
    report.add_argument("--json", action="store_true", help="print JSON instead of Markdown")

    compare = commands.add_parser("compare", help="compare runs side by side (table + chart)")
    compare.add_argument("runs", nargs="+", help="run folders")
    compare.add_argument("--out", default=None, help="PNG bar chart to write")


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "eval_command", None)
    if command == "run":
        return _run(args)
    if command == "report":
        return _report(args)
    if command == "compare":
        return _compare(args)
    print("usage: fncall eval {run,report,compare} ... (see fncall eval --help)", file=sys.stderr)
    return 2


def expand_categories(names: list[str]) -> list[str]:
    from fncall.evaluate.data import CATEGORIES

    out: list[str] = []
    for name in names:
        for part in name.split(","):
            part = part.strip()
            if part == "all":
                out.extend(CATEGORIES)
            elif part in CATEGORY_GROUPS:
                out.extend(CATEGORY_GROUPS[part])
            elif part:
                out.append(part)
    return list(dict.fromkeys(out))


def _run(args: argparse.Namespace) -> int:
    from fncall.evaluate.data import load_cases
    from fncall.evaluate.report import load_report, write_report
    from fncall.evaluate.runner import probe_endpoint, run_eval

    if not args.model and not args.endpoint:
        raise UserError("give the model to evaluate: --model NAME|PATH or --endpoint URL")
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    if args.text_max_tokens is not None and args.text_max_tokens < 1:
        raise UserError(f"--text-max-tokens must be at least 1, got {args.text_max_tokens}")
    if args.text_max_tokens is not None and args.constrained is False:
        raise UserError(
            "--text-max-tokens needs constrained decoding (without a grammar a text answer may "
            "still turn into a call later); drop it or --no-constrained"
        )
    if not args.endpoint and args.format != "auto":
        from fncall.formats import get_format

        get_format(args.format)  # looked up now: an unknown name fails before any case runs
    categories = expand_categories(args.categories)
    cases = load_cases(
        categories, limit=args.limit, seed=args.seed, data_dir=args.data_dir, ids=args.ids
    )
    api_key = args.api_key or os.environ.get("OPENAI_API_KEY")
    if args.endpoint:
        if args.constrained is not None or args.text_max_tokens is not None:
            raise UserError(
                "--constrained/--no-constrained and --text-max-tokens apply to a local --model, "
                "not to an --endpoint"
            )
        probe_endpoint(args.endpoint, api_key=api_key)
    out = Path(args.out)
    meta = {
        "model": args.model,
        "endpoint": args.endpoint,
        "format": None if args.endpoint else args.format,
        "constrained": args.constrained,
        "judge": None if args.endpoint else _judge_name(judge_of(args), args.model),
        "count": None if args.endpoint else _count_name(args.count),
        "count_coverage": None if args.endpoint else _coverage_name(args.count_coverage),
        "categories": categories,
        "limit": args.limit,
        "seed": args.seed,
        "ids": args.ids,
        "data_dir": args.data_dir,
    }
    _check_meta(out, meta)
    model = _build_model(args, api_key)
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    result = run_eval(
        model,
        cases,
        out_path=out / "results.jsonl",
        workers=args.workers if args.endpoint else 1,
        processes=1 if args.endpoint else args.workers,
        progress=not args.no_progress,
    )
    report = load_report(out)  # with the well-formed check and the planned cases
    markdown, _ = write_report(report, out)
    if result.resumed:
        print(f"resumed: {result.resumed} case(s) were already done in {out}", file=sys.stderr)
    print(report.to_markdown(), end="")
    print(f"\nwritten: {out / 'results.jsonl'}, {markdown}, {markdown.with_suffix('.json')}")
    return 0


def _judge_name(judge: Any, model: str | None) -> str:
    """How a run folder records ``--judge``: auto, off, or the threshold, then the similarity,
    and when the question is asked on a first turn and ``sure`` where they are not the model's
    own (``fncall.judge.default_judge``)."""
    if judge is None:
        return "off"
    if isinstance(judge, str):
        return judge
    from fncall.judge import default_judge

    parts = [f"threshold {judge.threshold}"]
    if judge.min_similarity is not None:
        parts.append(f"similarity {judge.min_similarity}")
    own = default_judge(model)
    if judge.first_turn_question != own.first_turn_question:
        names = {setting: name for name, setting in FIRST_TURN_QUESTIONS.items()}
        parts.append(f"first-turn question {names[judge.first_turn_question]}")
    if judge.sure != own.sure:
        parts.append(f"sure {judge.sure}")
    return ", ".join(parts)


def _count_name(count: Any) -> str:
    """How a run folder records ``--count``: auto, off, or the threshold."""
    if count is None:
        return "off"
    return count if isinstance(count, str) else f"threshold {count}"


def _coverage_name(coverage: Any) -> str:
    """How a run folder records ``--count-coverage``: auto, off, or its two amounts."""
    if coverage is None:
        return "off"
    return coverage if isinstance(coverage, str) else f"more {coverage[0]}, fewer {coverage[1]}"


def _check_meta(out: Path, meta: dict[str, Any]) -> None:
    """Refuse to resume a run folder that holds a different run (mixing would be wrong)."""
    path = out / "meta.json"
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    keys = (
        "model",
        "endpoint",
        "format",
        "constrained",
        "judge",
        "count",
        "count_coverage",
        "data_dir",
    )
    # A run from before --count existed decided its call counts greedily: "off"; one from
    # before --count-coverage ran what "auto" was then (coverage off for every format).
    previous.setdefault("count", "off")
    previous.setdefault("count_coverage", None if previous.get("endpoint") else "auto")
    changed = [k for k in keys if previous.get(k) != meta.get(k)]
    if changed:
        detail = ", ".join(f"{k}: {previous.get(k)!r} -> {meta.get(k)!r}" for k in changed)
        raise UserError(f"{out} holds another run ({detail}); choose a new --out or delete it")


def _build_model(args: argparse.Namespace, api_key: str | None) -> Any:
    options: dict[str, Any] = {}
    if args.endpoint:
        from fncall.engine.remote import RemoteChat

        if args.max_tokens:
            options["max_tokens"] = args.max_tokens
        return RemoteChat(args.endpoint, args.model or "default", api_key=api_key, **options)
    from fncall.evaluate.runner import LocalModelSpec

    options["format"] = args.format
    if args.constrained is not None:
        options["constrained"] = args.constrained
    if args.max_tokens is not None:
        options["max_tokens"] = args.max_tokens
    if args.text_max_tokens is not None:
        options["text_max_tokens"] = args.text_max_tokens
    options["judge"] = judge_of(args)
    options["count_threshold"] = args.count
    options["count_coverage"] = args.count_coverage
    spec = LocalModelSpec(args.model, options)
    return spec if args.workers > 1 else spec()  # with processes, each loads its own copy


def _report(args: argparse.Namespace) -> int:
    from fncall.evaluate.report import load_report, results_path, write_report

    report = load_report(args.run)
    path = results_path(args.run)
    write_report(report, path.parent)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.to_markdown(), end="")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from fncall.evaluate.report import compare_markdown, load_report, plot_comparison

    reports = [load_report(run) for run in args.runs]
    names = [r.name for r in reports]
    if len(set(names)) != len(names):  # two runs/NAME from different parents: use the paths
        reports = [load_report(run, name=str(run)) for run in args.runs]
    print(compare_markdown(reports), end="")
    if args.out:
        print(f"\nchart: {plot_comparison(reports, args.out)}")
    return 0
