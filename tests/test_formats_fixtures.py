"""The parsers on real, messy, unconstrained outputs of the default model.

tests/fixtures/qwen_outputs.json is written by ``scripts/record_fixtures.py`` (greedy, no
grammar, once with the ``json`` format's prompt and once with Qwen's own ``<tool_call>`` tool
prompt). ``parsed`` is what the parser read at recording time, checked by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fncall.errors import ModelOutputError
from fncall.formats import get_format

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "qwen_outputs.json").read_text())
CASES = FIXTURE["cases"]


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c['prompt_format']}:{c['question'][:30]}" for c in CASES]
)
def test_parser_reads_the_recorded_output(case):
    fmt = get_format(case["prompt_format"])
    expected = case["parsed"]
    if isinstance(expected, str):
        with pytest.raises(ModelOutputError) as info:
            fmt.parse(case["output"])
        assert info.value.raw == case["output"]
        return
    turn = fmt.parse(case["output"])
    assert [[c.name, dict(c.arguments)] for c in turn.tool_calls] == expected
    assert turn.raw == case["output"]


@pytest.mark.parametrize("case", CASES, ids=[f"x:{c['question'][:30]}" for c in CASES])
def test_every_format_understands_every_recorded_call(case):
    """Tolerance: whichever format is active, a JSON call the model wrote is not lost."""
    if isinstance(case["parsed"], str) or not case["parsed"]:
        return
    for name in ("json", "hermes", "llama3"):
        turn = get_format(name).parse(case["output"])
        assert [[c.name, dict(c.arguments)] for c in turn.tool_calls] == case["parsed"]
