"""Which tool-call format each model gets by default (``format="auto"``).

The rule: prompt and grammar must ask for what the model is inclined to emit. Qwen2.5-Coder's
template asks for ``<tool_call>`` tags, yet the model answers with bare or fenced JSON (255 of
300 BFCL answers were fenced JSON, none used tags), so the tags are out. Of the syntaxes it does
write, Python call lists suit the coder model best: on generated requests
(``benchmarks/bench_count.py``) its ``pythonic`` drafts were exactly right for 46 % against 39 %
in ``json`` (42.5 % with ``json``'s best call-count setting), the gain all in requests asking
for several calls, and they are about half as many tokens. It gets ``pythonic``, with the
instructions in the system message; the 1.5B gets ``pythonic-compact``, the same calls under a
leaner prompt that measured as well on the development data for it (not for the 0.5B). Other
Qwen2.5 models keep ``json``. SmolLM2's template ignores tools and the model has no call habit
worth keeping; ``json`` is the syntax fine-tuning targets, so it gets ``json`` too. Unknown
models get the syntax their template teaches, else ``json``.
"""

from __future__ import annotations

from fncall.formats.template import template_features

# (lower-case substring of the model name, format). First match wins.
PREFERRED_FORMATS: list[tuple[str, str]] = [
    ("qwen2.5-coder-1.5b", "pythonic-compact"),
    ("qwen2.5-coder", "pythonic"),
    ("qwen2.5", "json"),
    ("smollm", "json"),
    ("hermes", "hermes"),
    ("llama-3", "llama3"),
    ("llama3", "llama3"),
]
DEFAULT_FORMAT = "json"
# Models whose answer turn after tool results (``tool_choice="none"``) keeps the tools in its
# prompt, under a grammar that admits text only (``LocalChat(answer_with_tools=...)``): that
# prompt extends the calling turn's, so only the call and its results are new tokens. None by
# default. Measured (``benchmarks/bench_answer_turn.py``, ``bench_agent.py --models``): the
# 1.5B's answers needed 62 instead of 89 new prompt tokens and 0.925x the time on generated
# conversations, but grew wordier on the demo ("The distance of a 42 km marathon is
# approximately 26.098 miles." for "26.098 miles"), so its median agent question took 4.30 s
# listed against 3.77 s hidden: no gain worth a change. The 0.5B, listed, wrote 12 of 44
# answers as calls in text.
ANSWERS_WITH_TOOLS: list[str] = []


def auto_format(model_name: str | None, chat_template: str | None) -> str:
    """The format name to use for a model, from its name and template."""
    name = (model_name or "").lower()
    for fragment, fmt in PREFERRED_FORMATS:
        if fragment in name:
            return fmt
    if chat_template and "You are Qwen" in chat_template:
        return "json"  # a Qwen2.5 derivative under another file name
    if chat_template:
        features = template_features(chat_template)
        if features.takes_tools and features.native_syntax:
            return features.native_syntax
    return DEFAULT_FORMAT


def auto_answer_with_tools(model_name: str | None) -> bool:
    """Whether a model's answer turns keep the tools in their prompt by default."""
    name = (model_name or "").lower()
    return any(fragment in name for fragment in ANSWERS_WITH_TOOLS)
