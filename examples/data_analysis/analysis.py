"""Four tools over one pandas DataFrame, with every argument checked before pandas sees it.

Nothing the model writes is evaluated: a column name must be one of the frame's columns, an
operator one of ``OPERATORS``, an aggregation one of ``FUNCTIONS``, and a value is converted to
the column's type (a number for a numeric column) or refused. The tools' schemas carry the
column names as an enum, so a constrained model cannot even write a wrong one; the functions
check again, for callers without a schema check, and a wrong name gets a reply that names it and
lists the real columns. Results are Markdown tables; ``plot`` writes a PNG.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
from pathlib import Path
from typing import Any, Literal, get_args

import pandas as pd

from fncall.errors import ToolError
from fncall.tools import ToolSet, tool_from_function
from fncall.types import Tool

Operator = Literal["==", "!=", ">", ">=", "<", "<=", "contains"]
Function = Literal["sum", "mean", "median", "min", "max", "count"]
ChartKind = Literal["bar", "line", "histogram", "scatter"]
OPERATORS: tuple[str, ...] = get_args(Operator)
FUNCTIONS: tuple[str, ...] = get_args(Function)
CHART_KINDS: tuple[str, ...] = get_args(ChartKind)
MAX_ROWS = 20  # a table longer than this is cut: the model reads every row of it
COLUMN_PARAMETERS = {"column", "group_by", "x", "y", "sort_by"}


class AnalysisError(ToolError):
    """The request cannot be answered as asked; the message says what would be accepted."""


class DataAnalysis:
    def __init__(self, frame: pd.DataFrame, *, name: str, out_dir: Path) -> None:
        if frame.empty or len(frame.columns) == 0:
            raise ValueError(f"{name} has no rows or no columns")
        self.frame = frame
        self.name = name
        self.out_dir = out_dir
        self.charts: list[Path] = []
        self._chart_numbers = itertools.count(1)

    @classmethod
    def from_csv(cls, path: Path, *, out_dir: Path) -> DataAnalysis:
        return cls(pd.read_csv(path), name=path.name, out_dir=out_dir)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def numeric_columns(self) -> list[str]:
        return [c for c in self.columns if pd.api.types.is_numeric_dtype(self.frame[c])]

    # -- validation -------------------------------------------------------------------------

    def column(self, name: Any, *, numeric: bool = False, role: str = "column") -> str:
        """``name`` if the frame has that column (case and spaces forgiven), else an error
        naming it and listing the columns."""
        if not isinstance(name, str) or not name.strip():
            raise AnalysisError(
                f"{role} must be a column name, got {name!r}; columns: {', '.join(self.columns)}"
            )
        if name not in self.columns:
            wanted = name.strip().lower().replace(" ", "_")
            matches = [c for c in self.columns if c.lower() == wanted]
            if not matches:
                close = difflib.get_close_matches(wanted, self.columns, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise AnalysisError(
                    f"{self.name} has no column {name!r}{hint}; its columns are: "
                    f"{', '.join(self.columns)}"
                )
            name = matches[0]
        if numeric and name not in self.numeric_columns():
            raise AnalysisError(
                f"{role} {name!r} holds text, and this needs numbers; numeric columns: "
                f"{', '.join(self.numeric_columns())}"
            )
        return name

    def _choice(self, value: Any, allowed: tuple[str, ...], role: str) -> str:
        if value not in allowed:
            raise AnalysisError(
                f"{role} {value!r} is not supported; use one of: {', '.join(allowed)}"
            )
        return str(value)

    def _typed_value(self, column: str, value: Any, operator: str) -> Any:
        if operator == "contains":
            return str(value)
        if column in self.numeric_columns():
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise AnalysisError(
                    f"column {column!r} holds numbers; {value!r} is not a number"
                ) from None
            if number != number:  # NaN matches nothing and would say nothing
                raise AnalysisError(f"{value!r} is not a number to compare {column!r} with")
            return number
        return str(value)

    def _mask(self, column: str, operator: str, value: Any) -> pd.Series:
        operator = self._choice(operator, OPERATORS, "operator")
        column = self.column(column)
        value = self._typed_value(column, value, operator)
        series = self.frame[column]
        if operator == "contains":
            return series.astype(str).str.contains(value, case=False, regex=False)
        if isinstance(value, str):
            series = series.astype(str)
            if operator in ("==", "!="):  # "north" finds "North"
                equal = series.str.lower() == value.lower()
                return equal if operator == "==" else ~equal
        comparisons = {
            "==": series.__eq__,
            "!=": series.__ne__,
            ">": series.__gt__,
            ">=": series.__ge__,
            "<": series.__lt__,
            "<=": series.__le__,
        }
        return comparisons[operator](value)

    # -- the tools ----------------------------------------------------------------------------

    def describe(self, column: str | None = None) -> str:
        frame = self.frame
        if column:
            column = self.column(column)
            series = frame[column]
            if column in self.numeric_columns():
                stats = series.describe().round(2).to_frame().T
                return f"Column {column!r} (numbers):\n\n{_markdown(stats, index=False)}"
            counts = series.value_counts().head(MAX_ROWS).rename("rows").reset_index()
            return (
                f"Column {column!r} (text), {series.nunique()} distinct values:\n\n"
                f"{_markdown(counts, index=False)}"
            )
        overview = pd.DataFrame(
            {
                "column": self.columns,
                "type": ["number" if c in self.numeric_columns() else "text" for c in self.columns],
                "distinct": [frame[c].nunique() for c in self.columns],
                "example": [frame[c].iloc[0] for c in self.columns],
            }
        )
        numeric = frame[self.numeric_columns()].describe().round(2).T
        numeric = numeric[["mean", "min", "50%", "max"]].rename(columns={"50%": "median"})
        return (
            f"{self.name}: {len(frame)} rows, {len(self.columns)} columns.\n\n"
            f"{_markdown(overview, index=False)}\n\nNumeric columns:\n\n{_markdown(numeric)}"
        )

    def filter_rows(
        self,
        column: str,
        operator: str,
        value: Any,
        sort_by: str | None = None,
        limit: int = 10,
    ) -> str:
        mask = self._mask(column, operator, value)
        rows = self.frame[mask]
        condition = f"{self.column(column)} {operator} {value!r}"
        if rows.empty:
            hint = ""
            column = self.column(column)
            if column not in self.numeric_columns():
                values = self.frame[column].drop_duplicates().astype(str).head(MAX_ROWS)
                hint = f" {column} takes the values: {', '.join(values)}."
            else:
                series = self.frame[column]
                hint = f" {column} ranges from {series.min()} to {series.max()}."
            return f"No rows where {condition}.{hint}"
        if sort_by:
            rows = rows.sort_values(self.column(sort_by, role="sort_by"), ascending=False)
        limit = max(1, min(int(limit), MAX_ROWS))
        shown = rows.head(limit)
        more = f" (first {len(shown)} shown)" if len(rows) > len(shown) else ""
        return f"{len(rows)} rows where {condition}{more}:\n\n{_markdown(shown, index=False)}"

    def aggregate(self, column: str, function: str, group_by: str | None = None) -> str:
        function = self._choice(function, FUNCTIONS, "function")
        column = self.column(column, numeric=function != "count")
        if not group_by:
            value = getattr(self.frame[column], function)()
            return f"{function} of {column}: {_number(value)}"
        group_by = self.column(group_by, role="group_by")
        table = self._grouped(column, function, group_by)
        return (
            f"{function} of {column} by {group_by}, largest first:\n\n"
            f"{_markdown(table.head(MAX_ROWS), index=False)}"
        )

    def _grouped(self, column: str, function: str, group_by: str) -> pd.DataFrame:
        values = self.frame.groupby(group_by)[column].agg(function).round(2)
        name = f"{function}_{column}"
        table = values.rename(name).reset_index()
        return table.sort_values(name, ascending=False)

    def plot(
        self,
        kind: str,
        x: str,
        y: str | None = None,
        function: str = "sum",
    ) -> str:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import StrMethodFormatter

        kind = self._choice(kind, CHART_KINDS, "kind")
        function = self._choice(function, FUNCTIONS, "function")
        figure, axes = plt.subplots(figsize=(8, 4.5))
        try:
            if kind == "histogram":
                x = self.column(x, numeric=True, role="x")
                axes.hist(self.frame[x], bins=20, color="#2e86c1", edgecolor="white")
                axes.set(xlabel=x, ylabel="rows", title=f"Distribution of {x}")
                shown = f"histogram of {x} ({len(self.frame)} values)"
            elif kind == "scatter":
                x = self.column(x, numeric=True, role="x")
                if not y:
                    raise AnalysisError("a scatter plot needs y, a second numeric column")
                y = self.column(y, numeric=True, role="y")
                axes.scatter(self.frame[x], self.frame[y], s=12, alpha=0.6)
                axes.set(xlabel=x, ylabel=y, title=f"{y} against {x}")
                shown = f"scatter of {y} against {x} ({len(self.frame)} points)"
            else:
                x = self.column(x, role="x")
                if y:
                    y = self.column(y, numeric=function != "count", role="y")
                    table = self.frame.groupby(x)[y].agg(function).round(2)
                    table = table.rename(f"{function}_{y}")
                else:  # rows per value of x
                    function, y = "count", "rows"
                    table = self.frame.groupby(x).size().rename("rows")
                if kind == "bar":
                    table = table.sort_values(ascending=False)
                    axes.bar(table.index.astype(str), table.to_numpy(), color="#2e86c1")
                else:
                    axes.plot(table.index.astype(str), table.to_numpy(), marker="o")
                axes.set(xlabel=x, ylabel=f"{function} of {y}", title=f"{function} of {y} by {x}")
                axes.tick_params(axis="x", labelrotation=45)
                shown = _markdown(table.reset_index().head(MAX_ROWS), index=False)
            if kind in ("bar", "line") and table.abs().max() >= 10_000:
                axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
            axes.grid(alpha=0.3)
            figure.tight_layout()
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"chart-{next(self._chart_numbers)}-{kind}.png"
            figure.savefig(path, dpi=100)
        finally:
            plt.close(figure)
        self.charts.append(path)
        return f"Saved a {kind} chart to {path}.\n\n{shown}"

    # -- as a function library ----------------------------------------------------------------

    def tools(self) -> ToolSet:
        """The four tools, their column parameters restricted to this frame's columns."""
        columns = self.columns

        def describe(column: str | None = None) -> str:
            """Describe the table: its columns, their types and summary statistics.

            Args:
                column: Describe only this column (its statistics or most common values).
            """
            return self.describe(column)

        def filter_rows(
            column: str,
            operator: Operator,
            value: str | float,
            sort_by: str | None = None,
            limit: int = 10,
        ) -> str:
            """Find the rows where a column compares to a value, e.g. units > 10.

            Args:
                column: The column to test.
                operator: How to compare the column with the value.
                value: The value to compare with (a number for numeric columns).
                sort_by: Sort the matching rows by this column, largest first.
                limit: How many matching rows to show (at most 20).
            """
            return self.filter_rows(column, operator, value, sort_by, limit)

        def aggregate(column: str, function: Function, group_by: str | None = None) -> str:
            """Compute a sum, mean, median, min, max or count of a column, optionally per group.

            Args:
                column: The column to aggregate.
                function: The aggregation to compute.
                group_by: Compute one value per distinct value of this column, e.g. region.
            """
            return self.aggregate(column, function, group_by)

        def plot(kind: ChartKind, x: str, y: str | None = None, function: Function = "sum") -> str:
            """Draw a chart of the table and save it as a PNG file.

            Bar and line charts show the aggregated y per value of x (row counts without y);
            a histogram shows the distribution of x; a scatter plot shows y against x.

            Args:
                kind: The kind of chart.
                x: The column on the x axis (the groups for bar and line charts).
                y: The column on the y axis.
                function: How bar and line charts aggregate y within each x.
            """
            return self.plot(kind, x, y, function)

        functions = [describe, filter_rows, aggregate, plot]
        return ToolSet([_with_column_enum(tool_from_function(f), columns) for f in functions])


def _with_column_enum(tool: Tool, columns: list[str]) -> Tool:
    """The tool with every column-naming parameter limited to ``columns``."""
    properties = dict(tool.parameters["properties"])
    for name in COLUMN_PARAMETERS & properties.keys():
        prop = dict(properties[name])
        nullable = prop.get("type") == ["string", "null"] or "anyOf" in prop
        prop.pop("anyOf", None)
        prop["type"] = ["string", "null"] if nullable else "string"
        prop["enum"] = [*columns, None] if nullable else list(columns)
        properties[name] = prop
    return dataclasses.replace(tool, parameters={**tool.parameters, "properties": properties})


def _number(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def _markdown(frame: pd.DataFrame, *, index: bool = True) -> str:
    """A pipe table, written here (pandas' to_markdown needs the tabulate package)."""
    if index:
        frame = frame.reset_index(names=frame.index.name or "")
    header = [str(c) for c in frame.columns]
    rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value == value else ""
    return str(value).replace("|", "\\|")
