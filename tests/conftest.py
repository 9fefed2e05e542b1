"""Shared test helpers: tiny tools in one line, and the weather function library on disk.

``function_tool`` builds the kind of tool most tests need: a name, a function (or none, for a
schema-only tool) and flat properties, all required. Test modules import it with
``from conftest import function_tool`` (pytest puts ``tests/`` on the path). The two function
libraries on disk are ``WEATHER_TOOLS_FILE`` (also the ``tools_file`` fixture, as the CLI's
``--tools`` takes it) and ``SAMPLE_TOOLS_FILE``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fncall.engine.base import Generation
from fncall.engine.scripted import ScriptedEngine
from fncall.errors import FncallError
from fncall.types import Tool


def pytest_configure(config: pytest.Config) -> None:
    """Tests never read or write the user's prefix store (fncall.engine.prefix_store) unless
    they name a folder of their own: states saved by other runs would change the cached-token
    counts. (Set here, in pytest's own process, not when a sandboxed child imports this file.)"""
    os.environ["FNCALL_PREFIX_STORE_MB"] = "0"


# get_weather(city) and convert_km_to_miles(km), with deterministic fake data.
WEATHER_TOOLS_FILE = Path(__file__).parent / "fixtures" / "weather_tools.py"
# @tool-decorated get_weather(city, unit), add(a, b) and async mean(values).
SAMPLE_TOOLS_FILE = Path(__file__).parent / "assets" / "sample_tools.py"


def function_tool(
    name: str,
    function: Callable[..., Any] | None = None,
    /,
    *,
    description: str = "",
    **properties: dict[str, Any],
) -> Tool:
    """A ``Tool`` over ``function`` whose parameters are ``properties`` (all required); a
    property may itself be called ``name`` or ``function``."""
    return Tool(
        name=name,
        description=description,
        parameters={"type": "object", "properties": properties, "required": list(properties)},
        function=function,
    )


# Two schema-only tools and their calls in the json format, for LocalChat over scripted engines.
WEATHER = function_tool(
    "get_weather", description="Current weather in a city", city={"type": "string"}
)
TIME = function_tool("get_time", description="Current time in a time zone", tz={"type": "string"})
PARIS = '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'
TWO = (
    '[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
    '{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}]'
)


@pytest.fixture
def tools_file() -> str:
    """The path of ``tests/fixtures/weather_tools.py``, as the CLI's ``--tools`` takes it."""
    return str(WEATHER_TOOLS_FILE)


def best_seconds(job: Callable[[], object], runs: int = 3) -> float:
    """The fastest of ``runs`` runs of ``job`` (fncall's own errors count as finishing): the
    machine may be busy with something else."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        with contextlib.suppress(FncallError):
            job()
        best = min(best, time.perf_counter() - start)
    return best


def assert_linear(make: Callable[[int], object], n: int) -> None:
    """``make(4 * n)`` may take at most 8 times as long as ``make(n)`` (quadratic: 16x), with a
    floor so that a few milliseconds of noise cannot fail it."""
    once, four = best_seconds(lambda: make(n)), best_seconds(lambda: make(4 * n))
    assert four < 8 * once + 0.05, f"n={n}: {once:.3f} s, 4n: {four:.3f} s"


class OldEngine(ScriptedEngine):
    """An Engine written before the sampling fields existed: its ``generate`` takes none of them
    (``top_p``, ``min_p``, ``logit_bias``, the penalties, ``top_logprobs``)."""

    def generate(  # type: ignore[override]
        self,
        prompt: str,
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Any = (),
        seed: int | None = None,
        constraint: Any = None,
        on_text: Any = None,
    ) -> Generation:
        return super().generate(
            prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop,
            seed=seed,
            constraint=constraint,
            on_text=on_text,
        )
