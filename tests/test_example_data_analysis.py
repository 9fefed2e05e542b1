"""examples/data_analysis: pandas tools with checked arguments, driven by a scripted model (one
marked test asks the real default model)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from examples.data_analysis import __main__ as cli
from examples.data_analysis.analysis import AnalysisError, DataAnalysis
from examples.data_analysis.make_sales import COLUMNS, SALES_FILE, make_rows
from examples.transcript import ask

from fncall.engine.scripted import ScriptedChat
from fncall.types import AssistantTurn, ToolCall

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def analysis(tmp_path) -> DataAnalysis:
    return DataAnalysis.from_csv(SALES_FILE, out_dir=tmp_path)


def _orders() -> list[dict[str, str]]:
    with SALES_FILE.open(encoding="utf-8") as rows:
        return list(csv.DictReader(rows))


def _call(analysis: DataAnalysis, name: str, **arguments):
    """One scripted call through the agent loop; its ToolResult."""
    model = ScriptedChat([AssistantTurn(tool_calls=(ToolCall(name=name, arguments=arguments),))])
    model.enqueue("answer")
    (result,) = ask("question", analysis.tools(), model).result.results
    return result


def test_the_bundled_csv_is_the_generators_output():
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(make_rows())
    assert SALES_FILE.read_text(encoding="utf-8") == out.getvalue()


def test_aggregate_per_group_matches_a_sum_by_hand(analysis):
    by_hand: dict[str, float] = defaultdict(float)
    for order in _orders():
        by_hand[order["region"]] += float(order["revenue"])
    result = _call(analysis, "aggregate", column="revenue", function="sum", group_by="region")
    assert result.ok
    lines = result.content.splitlines()
    assert lines[0] == "sum of revenue by region, largest first:"
    assert lines[2:4] == ["| region | sum_revenue |", "|---|---|"]
    rows = [line.strip("|").split("|") for line in lines[4:]]
    shown = {region.strip(): float(total.replace(",", "")) for region, total in rows}
    assert shown == pytest.approx(dict(by_hand), abs=0.01)
    assert list(shown) == sorted(by_hand, key=by_hand.get, reverse=True)
    mean = _call(analysis, "aggregate", column="units", function="mean")
    expected = sum(int(o["units"]) for o in _orders()) / len(_orders())
    assert mean.content == f"mean of units: {expected:,.2f}"


def test_filter_rows_finds_and_sorts_the_matching_orders(analysis):
    big = [o for o in _orders() if int(o["units"]) > 15]
    result = _call(
        analysis, "filter_rows", column="units", operator=">", value=15, sort_by="revenue"
    )
    assert result.content.startswith(f"{len(big)} rows where units > 15 (first 10 shown):")
    table = result.content.split("\n\n", 1)[1].splitlines()
    assert table[0].startswith("| order_id | date |") and len(table) == 2 + 10
    top = max(big, key=lambda o: float(o["revenue"]))
    assert table[2].startswith(f"| {top['order_id']} |")
    north = _call(analysis, "filter_rows", column="region", operator="==", value="north", limit=3)
    count = sum(o["region"] == "North" for o in _orders())
    assert north.content.startswith(f"{count} rows where region == 'north' (first 3 shown)")
    laptops = analysis.filter_rows("product", "contains", "LAP")
    assert laptops.startswith(f"{sum(o['product'] == 'Laptop' for o in _orders())} rows")


def test_a_misspelled_column_is_named_with_the_real_columns(analysis):
    # through the schema (what the model gets back) ...
    result = _call(analysis, "aggregate", column="revnue", function="sum")
    assert not result.ok
    text = result.render()
    assert "'revnue' is not one of" in text and "'revenue'" in text and "'discount_pct'" in text
    # ... and in the function itself, for callers that skip the schema
    with pytest.raises(AnalysisError) as error:
        analysis.aggregate("revnue", "sum", "region")
    assert str(error.value) == (
        "sales.csv has no column 'revnue' (did you mean 'revenue'?); its columns are: "
        + ", ".join(COLUMNS)
    )
    assert analysis.column("Unit Price") == "unit_price"  # case and spaces are forgiven


def test_bad_operators_functions_and_values_are_refused_with_what_is_accepted(analysis):
    result = _call(analysis, "filter_rows", column="units", operator="=", value=3)
    assert not result.ok and "'=' is not one of" in result.render() and "'>='" in result.render()
    result = _call(analysis, "aggregate", column="revenue", function="average")
    assert not result.ok and "'average' is not one of" in result.render()
    with pytest.raises(AnalysisError, match="operator '=~' is not supported; use one of: =="):
        analysis.filter_rows("units", "=~", 3)
    with pytest.raises(AnalysisError, match="column 'region' holds text, and this needs numbers"):
        analysis.aggregate("region", "mean")
    with pytest.raises(AnalysisError, match="column 'units' holds numbers; 'many' is not a number"):
        analysis.filter_rows("units", ">", "many")


def test_an_empty_result_says_which_values_exist(analysis):
    result = _call(analysis, "filter_rows", column="region", operator="==", value="Nrth")
    assert result.ok
    assert result.content == (
        "No rows where region == 'Nrth'. region takes the values: South, North, East, West."
    )
    numbers = analysis.filter_rows("units", ">", 1000)
    assert numbers == "No rows where units > 1000. units ranges from 1 to 20."


def test_model_text_is_data_never_code(analysis, tmp_path):
    attack = "__import__('os').system('touch " + str(tmp_path / "pwned") + "')"
    assert analysis.filter_rows("region", "==", attack).startswith("No rows where region ==")
    with pytest.raises(AnalysisError, match="is not a number"):
        analysis.filter_rows("units", "<", attack)
    with pytest.raises(AnalysisError, match="has no column"):
        analysis.aggregate(attack, "count")
    assert not (tmp_path / "pwned").exists()


def test_the_schemas_offer_exactly_the_frames_columns(analysis):
    tools = {tool.name: tool for tool in analysis.tools()}
    assert sorted(tools) == ["aggregate", "describe", "filter_rows", "plot"]
    for name, parameter in [("aggregate", "column"), ("plot", "x"), ("filter_rows", "sort_by")]:
        enum = tools[name].parameters["properties"][parameter]["enum"]
        assert [c for c in enum if c is not None] == COLUMNS
    operators = tools["filter_rows"].parameters["properties"]["operator"]["enum"]
    assert operators == ["==", "!=", ">", ">=", "<", "<=", "contains"]


def test_describe_gives_the_columns_and_their_statistics(analysis):
    overview = _call(analysis, "describe").content
    assert overview.startswith("sales.csv: 600 rows, 11 columns.")
    assert "| region | text | 4 | " in overview and "| units | 5.17 | 1 | 4 | 20 |" in overview
    region = analysis.describe("region")
    assert region.startswith("Column 'region' (text), 4 distinct values:")


def test_plot_writes_a_png_and_reports_its_data(analysis, tmp_path):
    result = _call(analysis, "plot", kind="line", x="month", y="revenue")
    assert result.ok and "Saved a line chart to" in result.content
    assert "| 2025-12 | " in result.content
    (chart,) = analysis.charts
    assert chart.parent == tmp_path and chart.read_bytes()[:8] == PNG
    assert chart.stat().st_size > 10_000
    analysis.plot("histogram", "revenue")
    analysis.plot("bar", "product")  # no y: rows per product
    assert len({p.name for p in analysis.charts}) == 3
    with pytest.raises(AnalysisError, match="a scatter plot needs y"):
        analysis.plot("scatter", "units")
    with pytest.raises(AnalysisError, match="x 'region' holds text"):
        analysis.plot("histogram", "region")


def test_the_command_prints_the_transcript(tmp_path, monkeypatch, capsys):
    def script(messages, tools):
        if messages[-1].role == "tool":
            return "North sold the most."
        call = ToolCall(
            name="aggregate",
            arguments={"column": "revenue", "function": "sum", "group_by": "region"},
        )
        return AssistantTurn(tool_calls=(call,))

    monkeypatch.setattr(cli, "load_model", lambda name, constrained: ScriptedChat([script] * 2))
    assert cli.main(["--question", "Revenue per region?", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "call   aggregate(column='revenue', function='sum', group_by='region')" in printed
    assert "| North | 304,115.36 |" in printed and "A: North sold the most." in printed


@pytest.mark.model
def test_the_default_model_aggregates_per_group(tmp_path):
    pytest.importorskip("llama_cpp")
    from examples.transcript import load_model

    analysis = DataAnalysis.from_csv(SALES_FILE, out_dir=Path(tmp_path))
    exchange = ask(
        "What is the total revenue per region?",
        analysis.tools(),
        load_model("qwen2.5-coder-0.5b"),
        system=cli.system_prompt(analysis),
    )
    calls = exchange.result.calls
    assert calls and calls[0].name == "aggregate", calls
    assert calls[0].arguments.get("column") == "revenue"
    assert calls[0].arguments.get("group_by") == "region"
    assert exchange.result.results[0].ok and exchange.result.text
