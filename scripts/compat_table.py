"""Print the README's agent-framework compatibility table from the tests' own results.

    .venv/bin/python scripts/compat_table.py            # runs the scripted-model tests
    .venv/bin/python scripts/compat_table.py --model    # and the real-model ones (minutes)
    .venv/bin/python scripts/compat_table.py --junit a.xml --junit b.xml   # reads runs' results
    .venv/bin/python scripts/compat_table.py --explain  # which tests stand behind each cell

A cell is ✓ only when every test behind it passed in this run; ✗ says how many failed;
"skipped" when pytest skipped them (the framework is not installed); "not run" when the run
left them out (the real-model tests without --model); "—" when nothing is tested there.
Versions are the installed ones.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

COLUMNS = ("tools", "streaming", "structured output", "Responses API", "real model")
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    framework: str
    distributions: tuple[str, ...]
    test_file: str
    # column -> test ids ("file::name[param]"; a name without "::" is in test_file)
    cells: dict[str, tuple[str, ...]]


ROWS = (
    Row(
        "LangChain `ChatOpenAI`",
        ("langchain-openai", "langchain-core"),
        "test_serve_frameworks.py",
        {
            "tools": ("test_langchain_streaming_tool_call[False]",),
            "streaming": ("test_langchain_streaming_tool_call[False]",),
            "structured output": (
                "test_langchain_with_structured_output_under_the_grammar[False]",
            ),
            "Responses API": (
                "test_langchain_streaming_tool_call[True]",
                "test_langchain_with_structured_output_under_the_grammar[True]",
            ),
        },
    ),
    Row(
        "LangGraph `create_react_agent`",
        ("langgraph",),
        "test_serve_frameworks.py",
        {
            "tools": ("test_langgraph_react_agent_two_steps[False]",),
            "Responses API": ("test_langgraph_react_agent_two_steps[True]",),
            "real model": (
                "test_frameworks_real.py::"
                "test_langgraph_react_agent_finishes_with_an_answer_from_the_result",
            ),
        },
    ),
    Row(
        "pydantic-ai `Agent`",
        ("pydantic-ai-slim",),
        "test_serve_pydantic_ai.py",
        {
            "tools": ("test_agent_calls_the_tool_then_answers_from_its_result[chat]",),
            "streaming": ("test_agent_streams_the_answer_after_the_tool[chat]",),
            "structured output": (
                "test_structured_output_is_generated_under_the_grammar[chat-native]",
                "test_structured_output_is_generated_under_the_grammar[chat-prompted]",
                "test_native_output_streamed[chat]",
                "test_default_tool_output[chat]",
                "test_default_tool_output_after_a_tool_call[chat]",
            ),
            "Responses API": (
                "test_agent_calls_the_tool_then_answers_from_its_result[responses]",
                "test_agent_streams_the_answer_after_the_tool[responses]",
                "test_structured_output_is_generated_under_the_grammar[responses-native]",
                "test_structured_output_is_generated_under_the_grammar[responses-prompted]",
                "test_native_output_streamed[responses]",
                "test_default_tool_output[responses]",
                "test_default_tool_output_after_a_tool_call[responses]",
            ),
        },
    ),
    Row(
        "OpenAI Agents SDK `Runner`",
        ("openai-agents",),
        "test_serve_openai_agents.py",
        {
            "tools": (
                "test_runner_calls_the_tool_then_answers_from_its_result[chat]",
                "test_a_strict_nested_tool_schema_is_generated_under_the_grammar[chat]",
            ),
            "streaming": ("test_run_streamed_delivers_the_answer_in_pieces[chat]",),
            "structured output": (
                "test_output_type_is_generated_under_the_grammar[chat]",
                "test_output_type_after_a_tool_call[chat]",
            ),
            "Responses API": (
                "test_runner_calls_the_tool_then_answers_from_its_result[responses]",
                "test_a_strict_nested_tool_schema_is_generated_under_the_grammar[responses]",
                "test_run_streamed_delivers_the_answer_in_pieces[responses]",
                "test_output_type_is_generated_under_the_grammar[responses]",
                "test_output_type_after_a_tool_call[responses]",
            ),
            "real model": (
                "test_frameworks_real_openai_agents.py::"
                "test_agents_sdk_runner_finishes_with_an_answer_from_the_result",
            ),
        },
    ),
    Row(
        "smolagents `ToolCallingAgent`, `CodeAgent`",
        ("smolagents",),
        "test_serve_smolagents.py",
        {
            "tools": ("test_tool_calling_agent_calls_the_tool_then_answers[complete]",),
            "streaming": ("test_tool_calling_agent_calls_the_tool_then_answers[stream]",),
            "structured output": (
                "test_code_agent_structured_step_is_generated_under_the_grammar",
            ),
        },
    ),
    Row(
        "LlamaIndex `FunctionAgent` (through litellm)",
        ("llama-index-core", "llama-index-llms-litellm"),
        "test_serve_llamaindex.py",
        {
            "tools": ("test_function_agent_streams_calls_the_tool_then_answers",),
            "streaming": ("test_function_agent_streams_calls_the_tool_then_answers",),
            "structured output": ("test_structured_predict_returns_the_object",),
        },
    ),
    Row(
        "litellm `completion`, `responses`",
        ("litellm",),
        "test_serve_litellm.py",
        {
            "tools": ("test_completion_tool_call_result_answer_and_usage",),
            "streaming": ("test_streamed_tool_call_reassembles",),
            "structured output": ("test_response_format_is_generated_under_the_grammar",),
            "Responses API": ("test_responses_tool_call_result_answer",),
        },
    ),
)


def test_id(row: Row, test: str) -> str:
    return test if "::" in test else f"{row.test_file}::{test}"


def test_files(with_model: bool) -> list[str]:
    files = {
        test_id(row, t).split("::")[0] for row in ROWS for ts in row.cells.values() for t in ts
    }
    return sorted(f"tests/{name}" for name in files if with_model or "_real" not in name)


def run_tests(junit: Path, with_model: bool) -> None:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += [f"--junitxml={junit}", *test_files(with_model)]
    if not with_model:
        command += ["-m", "not model"]
    print("$", " ".join(command[1:]), file=sys.stderr)
    subprocess.run(command, cwd=ROOT, stdout=sys.stderr, check=False)


def read_outcomes(junit: Path) -> dict[str, str]:
    """``file::name[param]`` -> passed / failed / skipped, from a pytest JUnit XML file."""
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        module = case.get("classname", "").split(".")[-1]
        outcome = "passed"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        outcomes[f"{module}.py::{case.get('name')}"] = outcome
    return outcomes


def cell(row: Row, column: str, outcomes: dict[str, str]) -> str:
    tests = [test_id(row, t) for t in row.cells.get(column, ())]
    if not tests:
        return "—"
    results = [outcomes.get(t, "not run") for t in tests]
    failed = results.count("failed")
    if failed:
        return f"✗ {failed} of {len(tests)} failed"
    for missing in ("not run", "skipped"):
        if missing in results:
            return missing if results.count(missing) == len(tests) else f"✓ (some {missing})"
    return "✓"


def version(row: Row) -> str:
    found = []
    for name in row.distributions:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def check_names(outcomes: dict[str, str]) -> None:
    """A test named here but absent from a file that ran was renamed: fail rather than show
    its cell as not run."""
    ran_files = {test.split("::")[0] for test in outcomes}
    stale = [
        test_id(row, test)
        for row in ROWS
        for tests in row.cells.values()
        for test in tests
        if test_id(row, test).split("::")[0] in ran_files and test_id(row, test) not in outcomes
    ]
    if stale:
        sys.exit(f"tests named in compat_table.py but not in the run: {sorted(set(stale))}")


def table(outcomes: dict[str, str]) -> str:
    check_names(outcomes)
    lines = [
        "| framework | version | " + " | ".join(COLUMNS) + " | tests |",
        "|---" * (len(COLUMNS) + 3) + "|",
    ]
    for row in ROWS:
        cells = " | ".join(cell(row, column, outcomes) for column in COLUMNS)
        files = sorted({test_id(row, t).split("::")[0] for ts in row.cells.values() for t in ts})
        tests = ", ".join(f"`{name}`" for name in files)
        lines.append(f"| {row.framework} | {version(row)} | {cells} | {tests} |")
    return "\n".join(lines)


def explain() -> str:
    lines = []
    for row in ROWS:
        lines.append(f"{row.framework}:")
        for column in COLUMNS:
            for test in row.cells.get(column, ()):
                lines.append(f"  {column}: tests/{test_id(row, test)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--junit",
        type=Path,
        action="append",
        help="read these pytest JUnit XML files (repeat the option) instead of running the tests",
    )
    parser.add_argument("--model", action="store_true", help="run the real-model tests too")
    parser.add_argument("--explain", action="store_true", help="list the tests behind each cell")
    args = parser.parse_args()
    if args.explain:
        print(explain())
        return
    if args.junit:
        outcomes: dict[str, str] = {}
        for junit in args.junit:
            outcomes.update(read_outcomes(junit))
        print(table(outcomes))
        return
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "junit.xml"
        run_tests(junit, args.model)
        print(table(read_outcomes(junit)))


if __name__ == "__main__":
    main()
