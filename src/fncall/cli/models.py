"""``fncall models``: list the embedded models; ``fncall models install NAME...`` assembles them
(and keeps the judge's fixed examples of a model it has just assembled in the prefix store)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import time

from fncall.engine.prefix_store import store_bytes
from fncall.models import MODELS, get_model, install_model, list_models, models_home


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("list", "install"),
        default="list",
        help="list (default) or install the named models",
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"models to install: {', '.join(MODELS)}"
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _size(size: int | None) -> str:
    return f"{size / 1e6:,.0f} MB" if size is not None else "?"


def _list(as_json: bool) -> int:
    rows = list_models()
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "name": row.name,
                        "size": row.size,
                        "installed": row.installed,
                        "path": str(row.path) if row.path else None,
                        "default": row.default,
                        "description": row.description,
                        "missing_packages": list(row.missing_packages),
                    }
                    for row in rows
                ],
                indent=2,
            )
        )
        return 0
    width = max(len(row.name) for row in rows) + 2  # room for the default marker
    print(f"{'NAME':<{width}} {'SIZE':>8}  {'INSTALLED':<9}  PATH / DESCRIPTION")
    for row in rows:
        name = row.name + (" *" if row.default else "")
        state = "yes" if row.installed else "no"
        detail = str(row.path) if row.path else row.description
        if not row.installed and row.missing_packages:
            detail += f" (needs {len(row.missing_packages)} package(s))"
        print(f"{name:<{width}} {_size(row.size):>8}  {state:<9}  {detail}")
    print("* default model. Install with: fncall models install NAME")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        if args.names:
            print("fncall models: 'list' takes no names; did you mean 'install'?")
            return 2
        return _list(args.json)
    if not args.names:
        print(f"fncall models install: name one or more of {', '.join(MODELS)}")
        return 2
    for name in args.names:
        spec = get_model(name)
        fresh = spec.source != "file" and not (models_home() / spec.filename).is_file()
        path = install_model(name, progress=not args.quiet)
        print(f"{name}: {path}")
        if fresh:
            _warm(name)
    return 0


def _warm(name: str) -> None:
    """A model just assembled: its judge's fixed examples evaluated once into the prefix store
    (``fncall.engine.prefix_store``), so that the first question of every later process reads
    them instead (~7 s of prompt on two cores for the 1.5B). Skipped without the store or
    without llama.cpp."""
    if not store_bytes(None) or importlib.util.find_spec("llama_cpp") is None:
        return
    from fncall.engine import load_engine
    from fncall.judge import ScoringEngine, default_judge

    started = time.perf_counter()
    engine = load_engine(name)
    if isinstance(engine, ScoringEngine):
        default_judge(engine.name).warm(engine, engine.chat_template)
    close = getattr(engine, "close", None)
    if callable(close):
        close()
    seconds = time.perf_counter() - started
    print(f"{name}: the judge's examples kept in the prefix store ({seconds:.1f} s)")
