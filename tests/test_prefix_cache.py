"""Saved KV states (fncall.engine.prefix_cache): the LRU itself, and on the real model the same
greedy conversation with and without them."""

from __future__ import annotations

import pytest

from conftest import function_tool
from fncall.engine.prefix_cache import PrefixCache, cache_bytes
from fncall.errors import UserError


def test_the_longest_shared_prefix_wins() -> None:
    cache = PrefixCache(1000)
    cache.put([1, 2, 3, 4], "a", 10)
    cache.put([1, 2, 9, 9, 9], "b", 10)
    entry, shared = cache.best([1, 2, 3, 4, 5, 6])
    assert entry is not None and entry.state == "a" and shared == 4
    entry, shared = cache.best([1, 2, 9, 8])
    assert entry is not None and entry.state == "b" and shared == 3
    assert cache.best([7, 7]) == (None, 0)


def test_a_state_that_extends_a_saved_one_replaces_it() -> None:
    cache = PrefixCache(1000)
    cache.put([1, 2, 3], "short", 10)
    cache.put([1, 2, 3, 4, 5], "long", 10)
    assert len(cache) == 1 and cache.best([1, 2, 3])[0].state == "long"  # type: ignore[union-attr]


def test_the_least_recently_used_states_go_first_and_the_bound_holds() -> None:
    cache = PrefixCache(25)
    cache.put([1], "one", 10)
    cache.put([2], "two", 10)
    cache.best([1])  # one is now the most recently used
    cache.put([3], "three", 10)
    assert {cache.best([t])[0].state for t in (1, 3)} == {"one", "three"}  # type: ignore[union-attr]
    assert cache.best([2]) == (None, 0) and cache.nbytes == 20
    assert not cache.put([4], "too big", 26) and len(cache) == 2


def test_bad_sizes_are_user_errors() -> None:
    for bad in (-1, "64", True, None):
        with pytest.raises(UserError, match="prefix_cache_mb"):
            cache_bytes(bad)  # type: ignore[arg-type]
    assert cache_bytes(0) == 0 and cache_bytes(1.5) == 1536 * 1024


WEATHER = function_tool(
    "get_weather",
    lambda city: {"city": city, "sky": "clear", "temperature_c": 21},
    description="Current weather in a city",
    city={"type": "string"},
)
CONVERT = function_tool(
    "convert_units",
    lambda value, from_unit, to_unit: {"value": round(value * 0.621371, 3), "unit": to_unit},
    description="Convert a quantity between units",
    value={"type": "number"},
    from_unit={"type": "string"},
    to_unit={"type": "string"},
)


@pytest.mark.model
@pytest.mark.parametrize("answer_with_tools", [False, True])
def test_a_conversation_decodes_the_same_tokens_with_and_without_saved_prefixes(
    answer_with_tools: bool,
) -> None:
    """The demo's flow (call -> result -> answer, several questions, the tool prefix reused and
    replaced) against an engine that evaluates every prompt from scratch; with the tools kept in
    the answer turn's prompt, that turn extends the calling turn's KV cache."""
    pytest.importorskip("llama_cpp")
    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.execute import chat
    from fncall.models import FAST_MODEL, install_model
    from fncall.pipeline import LocalChat

    class Uncached(LlamaCppEngine):
        def _reuse_prefix(self, tokens: list[int]) -> int:
            self._llama.reset()
            return 0

    path = install_model(FAST_MODEL, progress=False)
    cached, uncached = LlamaCppEngine(path, n_ctx=2048), Uncached(path, n_ctx=2048)
    runs: dict[str, list[tuple[str, int, int]]] = {"cached": [], "uncached": []}
    for name, engine in (("cached", cached), ("uncached", uncached)):
        generate = engine.generate

        def record(prompt: str, _log=runs[name], _generate=generate, **options):  # type: ignore[no-untyped-def]
            out = _generate(prompt, **options)
            _log.append((out.text, out.completion_tokens, out.cached_tokens))
            return out

        engine.generate = record  # type: ignore[method-assign]
        model = LocalChat(engine, answer_with_tools=answer_with_tools)
        for question in ("Weather in Oslo?", "How many miles is 10 km?", "Weather in Rome?"):
            chat(question, [WEATHER, CONVERT], model=model, max_tokens=48)
        engine.close()
    assert [r[:2] for r in runs["cached"]] == [r[:2] for r in runs["uncached"]]
    assert all(r[2] == 0 for r in runs["uncached"])
    # every question's first turn after the first found the tool prefix cached
    firsts = [r for r in runs["cached"] if r[0].startswith("[")][1:]
    assert len(firsts) == 2 and all(r[2] > 100 for r in firsts), runs["cached"]
    if answer_with_tools:  # the answers found the calling turn (tools, question, call) cached
        answers = [r for r in runs["cached"] if not r[0].startswith("[")]
        assert len(answers) == 3 and all(r[2] > 100 for r in answers), runs["cached"]
