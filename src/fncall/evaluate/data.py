"""BFCL-format evaluation data: load cases from ``bfcl-eval``'s package or any folder of files.

A category is two JSON Lines files: ``BFCL_v4_<category>.json`` (``id``, ``question`` = turns of
messages, ``function`` = BFCL function docs) and ``possible_answer/BFCL_v4_<category>.json``
(``id``, ``ground_truth``). Irrelevance categories have no answer file: the right answer is no call.

BFCL function names may contain dots (``math.factorial``), which OpenAI-style tool names cannot.
Like BFCL does for function-calling models, the model is shown ``math_factorial`` and its calls
are mapped back to the original name before checking (``Case.restore_names``).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fncall.errors import UserError
from fncall.package_data import bfcl_data_dir
from fncall.tools.importers import tool_from_bfcl
from fncall.types import Message, Tool, ToolCall

# Categories scored by the AST checker (Python) or by "no call" (irrelevance).
AST_CATEGORIES: tuple[str, ...] = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
IRRELEVANCE_CATEGORIES: tuple[str, ...] = ("irrelevance", "live_irrelevance")
NON_LIVE: tuple[str, ...] = ("simple_python", "multiple", "parallel", "parallel_multiple")
LIVE: tuple[str, ...] = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
# Every accepted category, in BFCL's reading order (non-live, then live).
CATEGORIES: tuple[str, ...] = (*NON_LIVE, "irrelevance", *LIVE, "live_irrelevance")

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, kw_only=True)
class Case:
    """One BFCL test case: the first turn's messages, the tools, and the acceptable answers.

    ``tools`` carry model-safe names (``.`` -> ``_``); ``functions`` are the original BFCL docs
    that the checker reads; ``name_map`` maps a safe name back to the original.
    ``ground_truth`` is BFCL's list of ``{function_name: {param: [acceptable values]}}``, empty
    for irrelevance categories.
    """

    id: str
    category: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...]
    functions: tuple[Mapping[str, Any], ...] = field(repr=False)
    ground_truth: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    name_map: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def expects_call(self) -> bool:
        return self.category not in IRRELEVANCE_CATEGORIES

    @property
    def expected_functions(self) -> list[str]:
        """The original names of the functions the ground truth calls, one per expected call."""
        return [next(iter(answer)) for answer in self.ground_truth]

    def restore_names(self, calls: Iterable[ToolCall]) -> list[ToolCall]:
        """Map the model-safe names in ``calls`` back to the original BFCL names."""
        return [
            ToolCall(name=self.name_map.get(c.name, c.name), arguments=c.arguments, id=c.id)
            for c in calls
        ]


def _tool(function: Mapping[str, Any], name: str, where: str) -> Tool:
    # BFCL's schemas that contradict themselves are repaired; a benchmark run is no place to
    # warn about data the user did not write.
    tool = tool_from_bfcl(function, where=where, warn_repairs=False)
    return Tool(name=name, description=tool.description, parameters=tool.parameters)


def _safe_names(names: Sequence[str]) -> dict[str, str]:
    """Original name -> model-safe name, unique within one case."""
    safe: dict[str, str] = {}
    taken = {n for n in names if not _SAFE_NAME.search(n)}
    for name in names:
        if not _SAFE_NAME.search(name):
            safe[name] = name
            continue
        candidate, suffix = _SAFE_NAME.sub("_", name), 2
        while candidate in taken:
            candidate, suffix = f"{_SAFE_NAME.sub('_', name)}_{suffix}", suffix + 1
        taken.add(candidate)
        safe[name] = candidate
    return safe


def make_case(
    entry: Mapping[str, Any],
    category: str,
    ground_truth: Sequence[Mapping[str, Any]] = (),
    *,
    where: str = "case",
) -> Case:
    """Build a ``Case`` from one BFCL data line (and its answer's ``ground_truth``)."""
    functions = entry["function"]
    if isinstance(functions, Mapping):
        functions = [functions]
    question = entry["question"]
    turn = question[0] if question and isinstance(question[0], list) else question
    safe = _safe_names([f["name"] for f in functions])
    return Case(
        id=str(entry["id"]),
        category=category,
        messages=tuple(Message(role=m["role"], content=m.get("content")) for m in turn),
        tools=tuple(
            _tool(f, safe[f["name"]], f"{where} function[{i}]") for i, f in enumerate(functions)
        ),
        functions=tuple(functions),
        ground_truth=tuple(ground_truth),
        name_map={s: original for original, s in safe.items() if s != original},
    )


def _category_file(folder: Path, category: str) -> Path | None:
    """``BFCL_v<N>_<category>.json`` in ``folder``, the highest ``N`` there; None if absent.
    (Matched whole: ``BFCL_v*_multiple.json`` would also find ``parallel_multiple``'s file.)"""
    exact = folder / f"BFCL_v4_{category}.json"
    if exact.is_file():
        return exact
    pattern = re.compile(rf"BFCL_v(\d+)_{re.escape(category)}\.json")
    versions = {
        int(match[1]): path
        for path in folder.glob("BFCL_v*.json")
        if (match := pattern.fullmatch(path.name)) and path.is_file()
    }
    return versions[max(versions)] if versions else None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON Lines file; a bad line is a ``UserError`` naming the file and line."""
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "id" not in row:
                raise UserError(f"{path}:{number}: expected a JSON object with an 'id'")
            rows.append(row)
    return rows


def _check_entry(entry: Mapping[str, Any], path: Path, line: int) -> None:
    problems = []
    if not isinstance(entry.get("question"), list) or not entry["question"]:
        problems.append("'question' must be a non-empty list of turns")
    functions = entry.get("function")
    if not isinstance(functions, list | dict):
        problems.append("'function' must be a list of function docs")
    else:
        for f in functions if isinstance(functions, list) else [functions]:
            if not isinstance(f, Mapping) or not isinstance(f.get("name"), str):
                problems.append("every function doc needs a 'name'")
                break
    if problems:
        raise UserError(f"{path}:{line}: malformed BFCL entry {entry.get('id')!r}: {problems[0]}")


def load_category(category: str, *, data_dir: str | Path | None = None) -> list[Case]:
    """Every case of one category, in file order."""
    if category not in CATEGORIES:
        raise UserError(f"unknown BFCL category {category!r}; accepted: {', '.join(CATEGORIES)}")
    folder = Path(data_dir) if data_dir is not None else bfcl_data_dir()
    path = _category_file(folder, category)
    if path is None:
        raise UserError(
            f"no data file for category {category!r} in {folder} (expected BFCL_v4_{category}.json)"
        )
    entries = read_jsonl(path)
    answers: dict[str, list[Mapping[str, Any]]] = {}
    if category not in IRRELEVANCE_CATEGORIES:
        answer_path = _category_file(folder / "possible_answer", category)
        if answer_path is None:
            raise UserError(
                f"no answer file for category {category!r}: expected "
                f"{folder / 'possible_answer' / f'BFCL_v4_{category}.json'}"
            )
        for number, row in enumerate(read_jsonl(answer_path), start=1):
            truth = row.get("ground_truth")
            if not isinstance(truth, list) or not all(
                isinstance(t, dict) and len(t) == 1 for t in truth
            ):
                raise UserError(
                    f"{answer_path}:{number}: 'ground_truth' must be a list of "
                    "{function_name: {param: [values]}} objects"
                )
            answers[str(row["id"])] = truth
    cases = []
    for number, entry in enumerate(entries, start=1):
        _check_entry(entry, path, number)
        truth = answers.get(str(entry["id"]), [])
        if category not in IRRELEVANCE_CATEGORIES and str(entry["id"]) not in answers:
            raise UserError(
                f"{path}:{number}: case {entry['id']!r} has no ground truth in "
                f"possible_answer/{path.name}"
            )
        where = f"{path}:{number}"
        try:
            cases.append(make_case(entry, category, truth, where=where))
        except (KeyError, TypeError, AttributeError, UserError) as exc:
            if isinstance(exc, UserError) and str(exc).startswith(where):
                raise
            raise UserError(f"{where}: malformed BFCL entry {entry['id']!r}: {exc}") from None
    return cases


def sample_cases(cases: Sequence[Case], limit: int | None, seed: int) -> list[Case]:
    """``limit`` cases drawn at random, reproducibly per (seed, category); file order is kept."""
    if limit is None or limit >= len(cases):
        return list(cases)
    if limit < 0:
        raise UserError(f"limit must be a positive number of cases, got {limit}")
    category = cases[0].category if cases else ""
    rng = random.Random(f"{seed}:{category}")
    picked = sorted(rng.sample(range(len(cases)), limit))
    return [cases[i] for i in picked]


def load_cases(
    categories: Iterable[str] = CATEGORIES,
    *,
    limit: int | None = None,
    seed: int = 0,
    data_dir: str | Path | None = None,
    ids: Iterable[str] | None = None,
) -> list[Case]:
    """Cases of several categories; with ``limit``, ``limit`` random cases per category; with
    ``ids``, only the cases of those ids (in file order), each of which must exist."""
    names = list(categories)
    unknown = [c for c in names if c not in CATEGORIES]
    if unknown:
        raise UserError(
            f"unknown BFCL categor{'y' if len(unknown) == 1 else 'ies'} "
            f"{', '.join(map(repr, unknown))}; accepted: {', '.join(CATEGORIES)}"
        )
    wanted = list(dict.fromkeys(ids)) if ids is not None else None
    if wanted is not None and limit is not None:
        raise UserError("give either case ids or a limit, not both: they pick cases differently")
    if wanted is not None and not wanted:
        raise UserError("the list of case ids is empty")
    cases: list[Case] = []
    for category in dict.fromkeys(names):
        cases.extend(sample_cases(load_category(category, data_dir=data_dir), limit, seed))
    if wanted is None:
        return cases
    found = {case.id for case in cases}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise UserError(
            f"case id{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing[:10]))} "
            f"not found in the categories {', '.join(dict.fromkeys(names))}; ids look like "
            f"{cases[0].id if cases else 'simple_python_0'!r} (add the category the id belongs to)"
        )
    keep = set(wanted)
    return [case for case in cases if case.id in keep]
