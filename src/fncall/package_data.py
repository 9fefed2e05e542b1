"""Data that ships inside pinned packages, found where pip put it and never downloaded.

The embedded models have their own catalogue (``fncall.models``); this module finds the other
data fncall reads from installed packages: BFCL's evaluation files, which both the evaluation
harness (``fncall.evaluate.data``) and the training contamination guard
(``fncall.train.contamination``) read. It sits low in the layers so that neither has to import
the other. The package is located with ``importlib.util.find_spec`` and never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fncall.errors import UserError

BFCL_PACKAGE = "bfcl_eval"
BFCL_REQUIREMENT = "bfcl-eval==2026.3.23"


def bfcl_data_dir() -> Path:
    """The ``data`` folder of the installed ``bfcl-eval`` package."""
    spec = importlib.util.find_spec(BFCL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"BFCL data needs the bfcl-eval package: pip install --no-deps {BFCL_REQUIREMENT} "
            "(or pass data_dir= / --data-dir with BFCL_v4_<category>.json files)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"
