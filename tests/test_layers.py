"""The layer rule: a module of ``src/fncall`` imports only from layers below its own.

Every ``import`` and ``from ... import`` counts, wherever it stands: at the top, inside a
function (a lazy import is still a dependency, only a later one), and under ``TYPE_CHECKING``.
A type-only import creates no runtime edge, but it does tie the lower module's meaning to the
higher one, and it is one refactor away from being a real import, so it counts too.
``importlib.import_module("fncall.x")`` with a literal name counts as well.

Within one package (``fncall.tools.*``) anything goes. Packages on the same layer are siblings
and must not import each other. ``README.md`` ("Architecture") shows the same order; a test
below keeps the two in step.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# Lowest first. Each entry is a top-level module or package of ``fncall``; ``fncall`` is the
# package's own ``__init__.py`` (the public API), ``__main__`` is ``python -m fncall``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "warnings"),
    ("types", "values"),
    ("models", "package_data", "embed"),
    ("tools",),
    ("constrain",),
    ("formats",),
    ("train",),
    ("engine",),
    ("judge",),
    ("pipeline",),
    ("execute",),
    ("evaluate",),
    ("serve",),
    ("cli",),
    ("fncall", "__main__"),
)
LEVEL: dict[str, int] = {name: level for level, names in enumerate(LAYERS) for name in names}

HOW_TO_FIX = """\
Each line is an import that reaches up (or sideways, to a sibling on the same layer). Fix it in
the lower module, not here: move the code both sides need down to the lower layer (or into a
neutral module low enough for both), or pass it in from above as an argument or a registered
plugin. Only if the order itself is wrong, change LAYERS in tests/test_layers.py and the
"Architecture" section of README.md together."""


@dataclass(frozen=True)
class Edge:
    path: Path
    line: int
    source: str  # importing module, e.g. fncall.types
    target: str  # imported module, e.g. fncall.tools.schema


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def component(module: str) -> str:
    """The layer key of a module: ``fncall.tools.schema`` -> ``tools``; ``fncall`` -> ``fncall``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _literal_import(node: ast.Call) -> str | None:
    """The module of ``importlib.import_module("fncall.x")`` (or an f-string's fixed start)."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name != "import_module" or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values:
        first = arg.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value.rstrip(".")
    return None


def imports_in(path: Path, src: Path, modules: set[str]) -> Iterator[Edge]:
    """Every import of a ``fncall`` module in one file, wherever it stands; ``modules`` are the
    names of all modules under ``src`` (to tell ``from fncall import engine`` from an API name)."""
    module = module_name(path, src)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, is_package)
            # ``from fncall import engine`` imports the submodule, not the package's API.
            submodules = [
                f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules
            ]
            targets = submodules or [target]
        elif isinstance(node, ast.Call):
            target = _literal_import(node)
            targets = [target] if target else []
        for target in targets:
            if target == "fncall" or target.startswith("fncall."):
                yield Edge(path, node.lineno, module, target)


def violations(src: Path) -> list[str]:
    """One line per import that breaks the layer rule, or per module that has no layer."""
    found: list[str] = []
    paths = sorted((src / "fncall").rglob("*.py"))
    modules = {module_name(p, src) for p in paths}
    for path in paths:
        where = path.relative_to(src.parent)
        own = component(module_name(path, src))
        if own not in LEVEL:
            found.append(
                f"{where}: fncall.{own} is on no layer: add it to LAYERS in tests/test_layers.py "
                "and to README.md's Architecture section"
            )
            continue
        for edge in imports_in(path, src, modules):
            other = component(edge.target)
            if other == own:
                continue
            if other not in LEVEL:
                found.append(f"{where}:{edge.line}: imports {edge.target}, which is on no layer")
            elif LEVEL[other] >= LEVEL[own]:
                how = (
                    "a sibling on the same layer" if LEVEL[other] == LEVEL[own] else "a layer above"
                )
                found.append(
                    f"{where}:{edge.line}: {own} (layer {LEVEL[own]}) imports {edge.target}, "
                    f"{how} ({other}, layer {LEVEL[other]})"
                )
    return found


def layer_order_text() -> str:
    return " < ".join(", ".join(names) for names in LAYERS)


def test_no_module_imports_a_higher_layer() -> None:
    found = violations(SRC)
    assert not found, "\n".join([*found, "", HOW_TO_FIX])


def test_every_layer_names_a_real_module() -> None:
    real = {p.stem if p.is_file() else p.name for p in (SRC / "fncall").iterdir()}
    real |= {"fncall"}
    assert not [name for name in LEVEL if name not in real]


def test_readme_shows_the_enforced_order() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert layer_order_text() in readme, (
        f"README.md's Architecture section must state the layer order exactly as tests/"
        f"test_layers.py enforces it:\n{layer_order_text()}"
    )


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    """A throwaway ``src/`` holding an ``fncall`` package with the given files."""
    src = tmp_path / "src"
    for name, text in {"__init__.py": "", **files}.items():
        path = src / "fncall" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return src


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {
                "types.py": """\
                    def from_function(fn):
                        from fncall.tools.schema import tool_from_function
                        return tool_from_function(fn)
                    """,
                "tools/__init__.py": "",
                "tools/schema.py": "",
            },
            r"src/fncall/types\.py:2: types \(layer \d+\) imports fncall\.tools\.schema, a layer",
            id="function-local",
        ),
        pytest.param(
            {
                "constrain/__init__.py": "",
                "constrain/testing.py": """\
                    from typing import TYPE_CHECKING
                    if TYPE_CHECKING:
                        from fncall.engine.decoding import DecodeRequest
                    """,
                "engine/__init__.py": "",
                "engine/decoding.py": "",
            },
            r"constrain/testing\.py:3: constrain .* imports fncall\.engine\.decoding",
            id="type-checking",
        ),
        pytest.param(
            {
                "train/__init__.py": "",
                "train/contamination.py": "from ..evaluate import data\n",
                "evaluate/__init__.py": "",
                "evaluate/data.py": "",
            },
            r"train/contamination\.py:1: train .* imports fncall\.evaluate\.data, a layer above",
            id="relative",
        ),
        pytest.param(
            {"errors.py": "import fncall.warnings\n", "warnings.py": ""},
            r"errors\.py:1: errors .* imports fncall\.warnings, a sibling on the same layer",
            id="sibling",
        ),
        pytest.param(
            {"models.py": "from fncall import Tool\n"},
            r"models\.py:1: models .* imports fncall, a layer above \(fncall, layer \d+\)",
            id="public-api",
        ),
        pytest.param(
            {
                "engine/__init__.py": """\
                    import importlib
                    importlib.import_module("fncall.serve.app")
                    """,
                "serve/__init__.py": "",
                "serve/app.py": "",
            },
            r"engine/__init__\.py:2: engine .* imports fncall\.serve\.app",
            id="import-module",
        ),
        pytest.param(
            {"helpers.py": ""},
            r"src/fncall/helpers\.py: fncall\.helpers is on no layer",
            id="no-layer",
        ),
    ],
)
def test_the_check_catches_a_violation(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    found = violations(_package(tmp_path, files))
    assert len(found) == 1 and re.search(expected, found[0]), found


def test_the_check_allows_downward_and_same_package_imports(tmp_path: Path) -> None:
    src = _package(
        tmp_path,
        {
            "errors.py": "",
            "types.py": "from fncall.errors import UserError\n",
            "tools/__init__.py": "from fncall.tools.schema import tool\nfrom . import schema\n",
            "tools/schema.py": "def tool():\n    from fncall.types import Tool\n",
            "cli/__init__.py": "import importlib\nimportlib.import_module(f'fncall.cli.{name}')\n",
            "__main__.py": "from fncall.cli import main\n",
        },
    )
    assert violations(src) == []
