"""Constrained decoding: a grammar from a tool set, applied token by token during decoding.

``build_constraint(tools, tool_choice=..., parallel_tool_calls=..., syntax=fmt)`` returns a
compiled, cached ``Constraint`` (or ``None`` when nothing is constrained); an engine asks it for
a ``TokenMatcher`` per generation. ``syntax`` is a ``CallSyntax``: a format of
``fncall.formats`` (``get_format(name)``), which writes the rules of its own calls. See
``README.md`` for the backend choice and figures.
"""

from __future__ import annotations

from fncall.constrain.base import CallSyntax, Constraint, TokenMatcher
from fncall.constrain.build import build_constraint, build_text_constraint, clear_cache
from fncall.constrain.grammar import build_grammar
from fncall.constrain.llguidance_backend import LLGuidanceConstraint, LLGuidanceMatcher
from fncall.constrain.schema import arguments_schema, normalize_schema
from fncall.constrain.testing import accepts, byte_vocabulary

__all__ = [
    "CallSyntax",
    "Constraint",
    "LLGuidanceConstraint",
    "LLGuidanceMatcher",
    "TokenMatcher",
    "accepts",
    "arguments_schema",
    "build_constraint",
    "build_grammar",
    "build_text_constraint",
    "byte_vocabulary",
    "clear_cache",
    "normalize_schema",
]
