"""Data analysis: the default model answers questions about a CSV with pandas tools.

``python -m examples.data_analysis [--question "..."] [--csv FILE] [--out DIR] [--model NAME]``

The model sees four tools (``describe``, ``filter_rows``, ``aggregate``, ``plot``) whose
arguments are checked against the table before pandas runs; tables come back as Markdown and
charts are written as PNG files into the output folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from examples.data_analysis.analysis import DataAnalysis
from examples.data_analysis.make_sales import SALES_FILE
from examples.transcript import load_model, run_questions
from fncall.models import DEFAULT_MODEL

QUESTIONS = [
    "What columns does the table have?",
    "What is the total revenue per region?",
    "Show the orders with more than 15 units.",
    "Plot the monthly revenue as a line chart.",
]


def system_prompt(analysis: DataAnalysis) -> str:
    """The table's name, size and columns, and one example call per tool: shown no example, the
    default 0.5B model fills every optional parameter (``describe(column='order_id')`` for
    "what columns are there?")."""
    return (
        f"You answer questions about the table {analysis.name} ({len(analysis.frame)} rows; "
        f"columns: {', '.join(analysis.columns)}) by calling a tool.\n"
        "Examples:\n"
        '"What is in the table?" -> describe()\n'
        '"Average units per product?" -> '
        'aggregate(column="units", function="mean", group_by="product")\n'
        '"Orders from the South?" -> filter_rows(column="region", operator="==", value="South")\n'
        '"Chart the number of orders per channel" -> plot(kind="bar", x="channel")\n'
        "After the result, answer in one or two sentences."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--question",
        action="append",
        help="ask this instead of the scripted questions (repeat for several)",
    )
    parser.add_argument("--csv", type=Path, default=SALES_FILE, help="default: %(default)s")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "fncall-data-analysis",
        help="folder for the charts (default: %(default)s)",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="catalogue name or path")
    parser.add_argument("--no-constrained", dest="constrained", action="store_false")
    args = parser.parse_args(argv)

    analysis = DataAnalysis.from_csv(args.csv, out_dir=args.out)
    print(f"{analysis.name}: {len(analysis.frame)} rows; columns {', '.join(analysis.columns)}")
    model = load_model(args.model, constrained=args.constrained)
    tools = analysis.tools()
    print(f"tools: {', '.join(tools.names)}\n")
    total = time.perf_counter()
    exchanges = run_questions(
        args.question or QUESTIONS, tools, model, system=system_prompt(analysis)
    )
    print(f"{len(exchanges)} questions in {time.perf_counter() - total:.1f} s")
    if analysis.charts:
        print("charts: " + ", ".join(str(path) for path in analysis.charts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
