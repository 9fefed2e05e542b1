"""The curated public API: every name in __all__ resolves, and ``import fncall`` stays light."""

from __future__ import annotations

import subprocess
import sys

import fncall


def test_every_public_name_resolves() -> None:
    missing = [name for name in fncall.__all__ if getattr(fncall, name, None) is None]
    assert missing == []


def test_import_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys, fncall; "
        "print(','.join(m for m in ('torch', 'transformers', 'llama_cpp', 'peft', 'fastapi') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        fncall.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("fncall.no_such_name should not exist")
