"""How many CPU threads a local model computes with: ``$FNCALL_THREADS``, else every core.

The llama.cpp engine reads it for its context, and the evaluation runner for the share of the
cores each of its model processes gets. It lives apart from any backend so that reading the
figure imports neither llama.cpp nor torch.
"""

from __future__ import annotations

import os

from fncall.errors import UserError

THREADS_VARIABLE = "FNCALL_THREADS"


def default_threads() -> int:
    """``$FNCALL_THREADS`` if set, else every core this process may run on."""
    configured = os.environ.get(THREADS_VARIABLE, "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise UserError(f"{THREADS_VARIABLE} must be a positive integer, got {configured!r}")
        return int(configured)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
