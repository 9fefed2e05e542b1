"""Print the pinned requirements of the named optional-dependency groups in pyproject.toml.

The Makefile installs data-only packages (model parts, BFCL data) with ``--no-deps`` from the
same pins that pyproject.toml declares, so the pins live in one place.
"""

import sys
import tomllib
from pathlib import Path

extras = tomllib.loads(Path("pyproject.toml").read_text())["project"]["optional-dependencies"]
unknown = [name for name in sys.argv[1:] if name not in extras]
if unknown:
    sys.exit(f"unknown extra(s) {unknown}; pyproject.toml has {sorted(extras)}")
print(" ".join(req for name in sys.argv[1:] for req in extras[name]))
