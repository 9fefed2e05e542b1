"""Constrained decoding: a grammar from a tool set, applied token by token during decoding.

``build_constraint(tools, tool_choice=..., parallel_tool_calls=..., syntax=...)`` returns a
compiled, cached ``Constraint`` (or ``None`` when nothing is constrained); an engine asks it for
a ``TokenMatcher`` per generation. See ``README.md`` for the backend choice and figures.
"""

from __future__ import annotations

from fncall.constrain.base import Constraint, TokenMatcher
from fncall.constrain.build import build_constraint, clear_cache
from fncall.constrain.grammar import SYNTAXES, build_grammar
from fncall.constrain.llguidance_backend import LLGuidanceConstraint, LLGuidanceMatcher
from fncall.constrain.schema import arguments_schema, normalize_schema
from fncall.constrain.testing import accepts, byte_vocabulary

__all__ = [
    "SYNTAXES",
    "Constraint",
    "LLGuidanceConstraint",
    "LLGuidanceMatcher",
    "TokenMatcher",
    "accepts",
    "arguments_schema",
    "build_constraint",
    "build_grammar",
    "byte_vocabulary",
    "clear_cache",
    "normalize_schema",
]
