"""Record what the default model really emits, unconstrained, into tests/fixtures/qwen_outputs.json.

    python scripts/record_fixtures.py [--model qwen2.5-coder-0.5b] [--out PATH]

Each question is asked twice, greedy and without a grammar: once with the ``json`` format's
instructions in the system message (what LocalChat uses for this model) and once through the
model's own template tool prompt (``hermes``, ``<tool_call>`` tags). The parsers are tested on
these raw outputs (tests/test_formats_fixtures.py); ``parsed`` holds what the parser read when
the fixture was recorded, checked by a person before committing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fncall.engine import load_engine
from fncall.errors import ModelOutputError
from fncall.formats import get_format, render_prompt
from fncall.types import Tool

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "qwen_outputs.json"


def _tool(name: str, description: str, **properties: str) -> Tool:
    return Tool(
        name=name,
        description=description,
        parameters={
            "type": "object",
            "properties": {
                key: {"type": kind.split(":")[0], "description": kind.split(":", 1)[1]}
                for key, kind in properties.items()
            },
            "required": list(properties),
        },
    )


TOOLS = [
    _tool("get_weather", "Get the current weather in a city.", city="string:City name"),
    _tool(
        "convert_currency",
        "Convert money between currencies.",
        amount="number:Amount",
        from_currency="string:ISO code",
        to_currency="string:ISO code",
    ),
    _tool(
        "convert_units",
        "Convert a quantity between units (km, mi, kg, lb, c, f).",
        value="number:Quantity",
        from_unit="string:Unit",
        to_unit="string:Unit",
    ),
    _tool(
        "math_factorial",
        "Compute the factorial of a non-negative integer.",
        number="integer:The number",
    ),
    _tool("search_web", "Search the web and return the top results.", query="string:Query"),
]

QUESTIONS = [
    "What's the weather in Paris?",
    "Convert 100 USD to JPY.",
    "How many pounds is 5 kg?",
    "What is the weather in Tokyo and in Oslo?",
    "Tell me the weather in Paris and convert 30 C to Fahrenheit.",
    "Write a haiku about the sea.",
    "Who wrote Hamlet?",
    "What is the factorial of 5?",
    "Find recent news about fusion energy.",
    "Get the weather for Rome, Madrid and Lisbon.",
    "Wie ist das Wetter in Berlin?",
    "Convert 100 dollars.",
]


def save_templates(models: list[str]) -> int:
    """The templates come verbatim from each GGUF's ``tokenizer.chat_template``."""
    folder = OUT.parent / "templates"
    folder.mkdir(exist_ok=True)
    for name in models:
        template = load_engine(name).chat_template
        if not template:
            print(f"{name} has no chat template", file=sys.stderr)
            continue
        (folder / f"{name}.jinja").write_text(template)
        print(f"saved {folder / name}.jinja", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument(
        "--templates",
        nargs="*",
        metavar="MODEL",
        help="instead, save these models' chat templates to tests/fixtures/templates/",
    )
    args = parser.parse_args(argv)
    if args.templates is not None:
        return save_templates(args.templates or ["qwen2.5-coder-0.5b", "smollm2-135m"])

    engine = load_engine(args.model)
    cases = []
    for prompt_format in ("json", "hermes"):
        for question in QUESTIONS:
            prompt = render_prompt(engine.chat_template, question, TOOLS, format=prompt_format)
            started = time.perf_counter()
            text = engine.generate(prompt, max_tokens=args.max_tokens, temperature=0.0).text
            try:
                turn = get_format(prompt_format).parse(text)
                parsed: object = [[c.name, dict(c.arguments)] for c in turn.tool_calls]
            except ModelOutputError as exc:
                parsed = f"ModelOutputError: {exc}"
            print(
                f"[{prompt_format}] {question} ({time.perf_counter() - started:.1f} s)\n"
                f"  {text!r}\n  -> {parsed}",
                file=sys.stderr,
            )
            cases.append(
                {
                    "prompt_format": prompt_format,
                    "question": question,
                    "output": text,
                    "parsed": parsed,
                }
            )
    document = {
        "model": engine.name,
        "decoding": {"temperature": 0.0, "max_tokens": args.max_tokens, "constrained": False},
        "tools": [tool.to_openai() for tool in TOOLS],
        "cases": cases,
    }
    args.out.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {len(cases)} cases to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
