"""Loading a user's tool library file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import SAMPLE_TOOLS_FILE
from fncall import UserError
from fncall.tools import load_tool_file
from fncall.warnings import FncallWarning


def write(tmp_path: Path, source: str, name: str = "my_tools.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def test_sample_library_exposes_its_decorated_tools() -> None:
    toolset = load_tool_file(SAMPLE_TOOLS_FILE)
    assert toolset.names == ["get_weather", "add", "mean"]
    weather = toolset.get("get_weather")
    assert weather.function is not None
    assert weather.function(city="Paris", unit="fahrenheit") == {
        "city": "Paris",
        "temperature": 64.4,
        "unit": "fahrenheit",
    }


def test_module_level_tools_list_wins(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '''
        from fncall.tools import tool

        @tool
        def shout(text: str) -> str:
            """Shout.

            Args:
                text: Words.
            """
            return text.upper()

        def whisper(text: str) -> str:
            """Whisper.

            Args:
                text: Words.
            """
            return text.lower()

        tools = [whisper]
        ''',
    )
    assert load_tool_file(path).names == ["whisper"]


def test_plain_public_documented_functions_are_collected(tmp_path: Path) -> None:
    write(
        tmp_path,
        "def helper_from_sibling():\n    '''Imported, not defined here.'''\n",
        "helpers.py",
    )
    path = write(
        tmp_path,
        '''
        from dataclasses import dataclass
        from helpers import helper_from_sibling

        @dataclass
        class Box:
            """A box.

            Attributes:
                size: Edge length.
            """
            size: int

        def volume(box: Box) -> int:
            """Volume of a box.

            Args:
                box: The box.
            """
            return box["size"] ** 3

        def undocumented(x: int) -> int:
            return x

        def _private(x: int) -> int:
            """Private."""
            return x
        ''',
    )
    toolset = load_tool_file(path)
    assert toolset.names == ["volume"]
    assert toolset.get("volume").parameters["properties"]["box"]["properties"] == {
        "size": {"type": "integer", "description": "Edge length."}
    }


def test_strict_docs_applies_to_plain_functions(tmp_path: Path) -> None:
    source = '''
        def area(w: float, h) -> float:
            """Area.

            Args:
                w: Width.
            """
            return w * h
        '''
    path = write(tmp_path, source)
    with pytest.raises(UserError) as info:
        load_tool_file(path)
    assert str(path) in str(info.value)
    assert "parameter 'h' has no type hint" in str(info.value)
    assert "my_tools.py:area" in str(info.value)
    with pytest.warns(FncallWarning) as record:
        assert load_tool_file(path, strict_docs="warn").names == ["area"]
    assert [str(w.message) for w in record] == [
        "function my_tools.py:area: parameter 'h' has no type hint",
        "function my_tools.py:area: parameter 'h' is not documented",
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import not_a_module_anywhere\n", "could not import tool file .*ModuleNotFoundError"),
        ("def broken(:\n", "could not import tool file .*SyntaxError"),
        ("raise SystemExit(3)\n", "could not import tool file .*SystemExit"),
        ("x = 1\n", "exposes no tools; decorate functions with @fncall.tools.tool"),
        ("tools = 5\n", "module-level `tools` must be a ToolSet or a list"),
        ("tools = ['nope']\n", r"`tools\[0\]` must be a Tool or a function, got 'nope'"),
    ],
)
def test_bad_files_are_user_errors_naming_the_path(
    tmp_path: Path, source: str, expected: str
) -> None:
    path = write(tmp_path, source)
    with pytest.raises(UserError, match=expected) as info:
        load_tool_file(path)
    assert str(path) in str(info.value)


def test_missing_and_non_python_paths(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"tool file '.*nowhere\.py' does not exist"):
        load_tool_file(tmp_path / "nowhere.py")
    with pytest.raises(UserError, match=r"must be a Python \(\.py\) file"):
        load_tool_file(tmp_path)
