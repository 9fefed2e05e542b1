"""Loading BFCL-format data: the shipped package data, a folder of files, sampling, and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fncall.errors import UserError
from fncall.evaluate.data import CATEGORIES, load_cases, load_category, make_case, sample_cases
from fncall.types import ToolCall

AREA = {
    "name": "geometry.area",
    "description": "Area of a triangle.",
    "parameters": {
        "type": "dict",
        "properties": {
            "base": {"type": "float", "description": "base"},
            "height": {"type": "integer", "description": "height"},
            "meta": {"type": "dict", "properties": {"unit": {"type": "string"}}},
            "pair": {"type": "tuple", "items": {"type": "integer"}},
            "anything": {"type": "any"},
        },
        "required": ["base", "height"],
    },
}
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city.",
    "parameters": {
        "type": "dict",
        "properties": {"city": {"type": "string", "description": "city"}},
        "required": ["city"],
    },
}


def _entry(case_id: str, question: str, functions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": case_id,
        "question": [[{"role": "user", "content": question}]],
        "function": functions,
    }


TINY: dict[str, list[tuple[dict[str, Any], list[dict[str, Any]] | None]]] = {
    "simple_python": [
        (
            _entry("simple_python_0", "area of base 10 height 5", [AREA]),
            [{"geometry.area": {"base": [10.0], "height": [5], "meta": [""]}}],
        ),
        (
            _entry("simple_python_1", "weather in Paris", [WEATHER]),
            [{"get_weather": {"city": ["Paris", "Paris, France"]}}],
        ),
    ],
    "multiple": [
        (
            _entry("multiple_0", "weather in Rome", [AREA, WEATHER]),
            [{"get_weather": {"city": ["Rome"]}}],
        ),
    ],
    "parallel": [
        (
            _entry("parallel_0", "weather in Oslo and Lima", [WEATHER]),
            [{"get_weather": {"city": ["Oslo"]}}, {"get_weather": {"city": ["Lima"]}}],
        ),
    ],
    "irrelevance": [
        (_entry("irrelevance_0", "tell me a joke", [WEATHER]), None),
        (_entry("irrelevance_1", "who wrote Hamlet", [AREA]), None),
    ],
}


def write_bfcl_folder(folder: Path, data: dict[str, Any] = TINY) -> Path:
    """Write a tiny BFCL-format data folder (data + possible_answer files)."""
    (folder / "possible_answer").mkdir(parents=True, exist_ok=True)
    for category, rows in data.items():
        lines = [json.dumps(entry) for entry, _ in rows]
        (folder / f"BFCL_v4_{category}.json").write_text("\n".join(lines) + "\n")
        answers = [json.dumps({"id": e["id"], "ground_truth": t}) for e, t in rows if t is not None]
        if answers:
            (folder / "possible_answer" / f"BFCL_v4_{category}.json").write_text(
                "\n".join(answers) + "\n"
            )
    return folder


def test_folder_cases_have_messages_tools_and_truth(tmp_path: Path) -> None:
    cases = load_cases(["simple_python", "irrelevance"], data_dir=write_bfcl_folder(tmp_path))
    assert [c.id for c in cases] == [
        "simple_python_0",
        "simple_python_1",
        "irrelevance_0",
        "irrelevance_1",
    ]
    area = cases[0]
    assert area.category == "simple_python" and area.expects_call
    assert area.messages[0].role == "user" and area.messages[0].content.startswith("area")
    assert area.ground_truth[0]["geometry.area"]["base"] == [10.0]
    assert area.expected_functions == ["geometry.area"]
    assert not cases[2].expects_call and cases[2].ground_truth == ()


def test_bfcl_types_become_json_schema_and_dotted_names_are_mapped(tmp_path: Path) -> None:
    (area,) = load_cases(["simple_python"], data_dir=write_bfcl_folder(tmp_path))[:1]
    tool = area.tools[0]
    assert tool.name == "geometry_area"  # OpenAI-style names cannot contain dots
    props = tool.parameters["properties"]
    assert tool.parameters["type"] == "object"
    assert props["base"]["type"] == "number" and props["height"]["type"] == "integer"
    assert props["meta"]["type"] == "object" and props["pair"]["type"] == "array"
    assert "type" not in props["anything"]
    assert area.functions[0]["name"] == "geometry.area"  # the checker keeps the original doc
    restored = area.restore_names([ToolCall(name="geometry_area", arguments={"base": 1})])
    assert restored[0].name == "geometry.area" and restored[0].arguments == {"base": 1}


def test_colliding_safe_names_stay_distinct() -> None:
    dotted = {**WEATHER, "name": "get.weather"}
    case = make_case(_entry("x", "q", [dotted, {**WEATHER, "name": "get_weather"}]), "multiple")
    names = [t.name for t in case.tools]
    assert len(set(names)) == 2 and "get_weather" in names
    other = next(n for n in names if n != "get_weather")
    assert case.restore_names([ToolCall(name=other)])[0].name == "get.weather"
    assert case.restore_names([ToolCall(name="get_weather")])[0].name == "get_weather"


def test_sampling_is_reproducible_and_per_category(tmp_path: Path) -> None:
    cases = [
        make_case(_entry(f"simple_python_{i}", "q", [WEATHER]), "simple_python") for i in range(50)
    ]
    first = [c.id for c in sample_cases(cases, 5, seed=3)]
    assert first == [c.id for c in sample_cases(cases, 5, seed=3)]
    assert first != [c.id for c in sample_cases(cases, 5, seed=4)]
    assert len(set(first)) == 5
    assert first == sorted(first, key=lambda i: int(i.rsplit("_", 1)[1]))  # file order kept
    assert len(sample_cases(cases, 500, seed=3)) == 50


def test_package_data_loads_and_limit_draws_per_category() -> None:
    pytest.importorskip("bfcl_eval")
    assert len(load_category("simple_python")) == 400
    sample = load_cases(["parallel", "irrelevance"], limit=4, seed=1)
    assert [c.category for c in sample] == ["parallel"] * 4 + ["irrelevance"] * 4
    # The draw of one category does not depend on which other categories are asked for.
    alone = load_cases(["irrelevance"], limit=4, seed=1)
    assert [c.id for c in alone] == [c.id for c in sample[4:]]


def test_case_ids_pick_cases_and_unknown_ids_are_named(tmp_path: Path) -> None:
    folder = write_bfcl_folder(tmp_path)
    every = load_cases(["simple_python", "irrelevance"], data_dir=folder)
    chosen = [every[-1].id, every[0].id]
    picked = load_cases(["simple_python", "irrelevance"], data_dir=folder, ids=chosen)
    assert [c.id for c in picked] == [every[0].id, every[-1].id]  # file order
    with pytest.raises(UserError, match="case id 'parallel_18' not found in the categories"):
        load_cases(["simple_python"], data_dir=folder, ids=[every[0].id, "parallel_18"])
    with pytest.raises(UserError, match="either case ids or a limit"):
        load_cases(["simple_python"], data_dir=folder, ids=[every[0].id], limit=2)


def test_unknown_category_names_the_accepted_ones(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown BFCL category 'simple_pyton'") as info:
        load_cases(["simple_pyton"], data_dir=tmp_path)
    assert all(c in str(info.value) for c in CATEGORIES)


def test_malformed_data_file_names_file_and_line(tmp_path: Path) -> None:
    folder = write_bfcl_folder(tmp_path)
    path = folder / "BFCL_v4_simple_python.json"
    path.write_text(path.read_text() + '{"id": "simple_python_9", "question": \n')
    with pytest.raises(UserError, match=r"BFCL_v4_simple_python\.json:3: not valid JSON"):
        load_cases(["simple_python"], data_dir=folder)


def test_entry_without_functions_is_reported(tmp_path: Path) -> None:
    folder = write_bfcl_folder(tmp_path)
    (folder / "BFCL_v4_irrelevance.json").write_text(json.dumps({"id": "i0", "question": []}))
    with pytest.raises(UserError, match=r"BFCL_v4_irrelevance\.json:1: malformed BFCL entry"):
        load_cases(["irrelevance"], data_dir=folder)


def test_missing_answers_are_reported(tmp_path: Path) -> None:
    folder = write_bfcl_folder(tmp_path)
    (folder / "possible_answer" / "BFCL_v4_multiple.json").unlink()
    with pytest.raises(UserError, match="no answer file for category 'multiple'"):
        load_cases(["multiple"], data_dir=folder)
    (folder / "possible_answer" / "BFCL_v4_multiple.json").write_text('{"id": "other"}\n')
    with pytest.raises(UserError, match="ground_truth"):
        load_cases(["multiple"], data_dir=folder)


def test_missing_category_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no data file for category 'live_simple'"):
        load_cases(["live_simple"], data_dir=write_bfcl_folder(tmp_path))


def test_a_category_never_reads_another_categorys_file(tmp_path: Path) -> None:
    """``BFCL_v*_multiple.json`` also matches ``BFCL_v4_parallel_multiple.json``: a folder
    without a ``multiple`` file served the parallel_multiple cases as ``multiple`` ones, and a
    folder of ``BFCL_v3_*`` files served ``parallel_multiple`` (the last match) for
    ``multiple``. Only the category's own file, of the newest version there, is read."""
    folder = write_bfcl_folder(tmp_path / "v4", {"parallel_multiple": TINY["multiple"]})
    with pytest.raises(UserError, match="no data file for category 'multiple'"):
        load_cases(["multiple"], data_dir=folder)
    v3 = write_bfcl_folder(tmp_path / "v3")
    for path in [*v3.glob("BFCL_v4_*.json"), *v3.glob("possible_answer/BFCL_v4_*.json")]:
        path.rename(path.with_name(path.name.replace("BFCL_v4_", "BFCL_v3_")))
    for where in (v3, v3 / "possible_answer"):  # parallel_multiple: other ids, sorted last
        text = (where / "BFCL_v3_multiple.json").read_text().replace('"multiple_', '"pm_')
        (where / "BFCL_v3_parallel_multiple.json").write_text(text)
    ids = [case.id for case in load_cases(["multiple"], data_dir=v3)]
    assert ids and all(i.startswith("multiple_") for i in ids)
    (v3 / "BFCL_v4_multiple.json").write_text((v3 / "BFCL_v3_multiple.json").read_text())
    (v3 / "possible_answer" / "BFCL_v4_multiple.json").write_text(
        (v3 / "possible_answer" / "BFCL_v3_multiple.json").read_text()
    )
    (v3 / "BFCL_v3_multiple.json").write_text("not json\n")  # the newer version is read
    assert [case.id for case in load_cases(["multiple"], data_dir=v3)] == ids


def test_bad_message_or_type_names_file_and_line(tmp_path: Path) -> None:
    folder = write_bfcl_folder(tmp_path)
    entry = _entry("irrelevance_0", "q", [WEATHER])
    entry["question"] = [[{"role": "robot", "content": "hi"}]]
    (folder / "BFCL_v4_irrelevance.json").write_text(json.dumps(entry) + "\n")
    with pytest.raises(UserError, match=r"BFCL_v4_irrelevance\.json:1: .*'robot'"):
        load_cases(["irrelevance"], data_dir=folder)
    bad_type = {**WEATHER, "parameters": {"type": "dict", "properties": {"x": {"type": "blob"}}}}
    (folder / "BFCL_v4_irrelevance.json").write_text(json.dumps(_entry("i", "q", [bad_type])))
    with pytest.raises(UserError, match=r"BFCL_v4_irrelevance\.json:1 function\[0\].*'blob'"):
        load_cases(["irrelevance"], data_dir=folder)
