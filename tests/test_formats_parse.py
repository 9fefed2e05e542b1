"""Parsing what real models emit: fences, prose, string arguments, single objects, broken calls."""

from __future__ import annotations

import pytest

from conftest import assert_linear, best_seconds
from fncall.errors import ModelOutputError
from fncall.formats import get_format


def calls_of(turn):
    return [(c.name, dict(c.arguments)) for c in turn.tool_calls]


JSON_LIKE = ["json", "hermes", "llama3", "pythonic"]  # every format falls back to JSON calls

MESSY = [
    # (model output, expected calls, expected content)
    (
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        [("get_weather", {"city": "Paris"})],
        None,
    ),
    (
        '```json\n[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]\n```',
        [("a", {}), ("b", {"x": 1})],
        None,
    ),
    (
        'Sure! Here is the call:\n```json\n{"name": "f", "arguments": {"q": "x"}}\n```\nDone.',
        [("f", {"q": "x"})],
        "Sure! Here is the call:\n\nDone.",
    ),
    (
        '{"name": "f", "arguments": "{\\"unit\\": \\"km\\", \\"n\\": 2}"}',
        [("f", {"unit": "km", "n": 2})],
        None,
    ),
    ('{"name": "f", "parameters": {"n": 2}}', [("f", {"n": 2})], None),
    ('{"type": "function", "function": {"name": "f", "arguments": "{}"}}', [("f", {})], None),
    ('{"function": "f", "arguments": {"n": 1}}', [("f", {"n": 1})], None),
    ('{"tool_calls": [{"name": "f", "arguments": {}}]}', [("f", {})], None),
    (
        '{"name": "f", "arguments": {"n": 1}}\n{"name": "g", "arguments": {}}',
        [("f", {"n": 1}), ("g", {})],
        None,
    ),
    ('{"name": "f", "arguments": null}', [("f", {})], None),
    ('{"name": "now"}', [("now", {})], None),
]


@pytest.mark.parametrize("name", JSON_LIKE)
@pytest.mark.parametrize(("text", "expected", "content"), MESSY)
def test_messy_json_calls(name, text, expected, content):
    turn = get_format(name).parse(text)
    assert calls_of(turn) == expected
    assert turn.content == content
    assert turn.raw == text


@pytest.mark.parametrize("name", JSON_LIKE)
@pytest.mark.parametrize(
    "text",
    [
        "I can't check the weather, but Paris is usually mild in May.",
        'A person record looks like {"name": "Ada", "born": 1815}.',
        "Use a list like [1, 2, 3] or a set.",
        '```python\nprint("hello")\n```',
        "",
    ],
)
def test_text_without_calls_is_content(name, text):
    turn = get_format(name).parse(text)
    assert turn.tool_calls == ()
    assert turn.content == (text.strip() or None)


@pytest.mark.parametrize("name", JSON_LIKE)
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"name": "get_weather", "arguments": {"city": "Par', "not valid JSON"),
        ('[{"name": "f", "arguments": {}}, {"name": "g", "argu', "not valid JSON"),
        ('{"name": "f", "arguments": "{city: Paris}"}', "string that is not valid JSON"),
        ('{"name": "f", "arguments": [1, 2]}', "must be a JSON object"),
        ('{"name": 3, "arguments": {}}', "function name"),
        ('[{"name": "f", "arguments": {}}, 7]', "non-call entry 7"),
        ('[{"name": "f", "arguments": {"city": "Rome", "city": "Oslo"}}]', r"repeats .*'city'"),
    ],
)
def test_attempted_but_unusable_calls_raise_with_raw_text(name, text, message):
    with pytest.raises(ModelOutputError, match=message) as info:
        get_format(name).parse(text)
    assert info.value.raw == text


def test_hermes_tags():
    text = (
        'Let me check.\n<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>\n'
        '<tool_call>\n```json\n{"name": "g", "arguments": "{}"}\n```\n</tool_call>'
    )
    turn = get_format("hermes").parse(text)
    assert calls_of(turn) == [("f", {"a": 1}), ("g", {})]
    assert turn.content == "Let me check."


def test_hermes_open_last_tag_and_list_inside():
    turn = get_format("hermes").parse('<tool_call>\n[{"name": "f", "arguments": {}}]')
    assert calls_of(turn) == [("f", {})]


def test_hermes_broken_tag_raises():
    with pytest.raises(ModelOutputError, match="<tool_call> block holds no valid call"):
        get_format("hermes").parse("<tool_call>\n{name: f}\n</tool_call>")


def test_llama3_python_tag_and_separators():
    text = '<|python_tag|>{"name": "f", "parameters": {"a": 1}}; {"name": "g", "parameters": {}}'
    turn = get_format("llama3").parse(text)
    assert calls_of(turn) == [("f", {"a": 1}), ("g", {})]
    assert turn.content is None and turn.raw == text


@pytest.mark.parametrize(
    ("text", "expected", "content"),
    [
        (
            "[get_weather(city='Paris'), convert(amount=3.5, unit=\"km\")]",
            [("get_weather", {"city": "Paris"}), ("convert", {"amount": 3.5, "unit": "km"})],
            None,
        ),
        ("```python\n[math.factorial(number=5)]\n```", [("math.factorial", {"number": 5})], None),
        ("get_time(tz='UTC')", [("get_time", {"tz": "UTC"})], None),
        (
            "[f(a=true, b=null, c=-2, d=(1, 2), e={'k': [False]})]",
            [("f", {"a": True, "b": None, "c": -2, "d": [1, 2], "e": {"k": [False]}})],
            None,
        ),
        (
            "I'll look that up: [search(q='fncall')]",
            [("search", {"q": "fncall"})],
            "I'll look that up:",
        ),
    ],
)
def test_pythonic_calls(text, expected, content):
    turn = get_format("pythonic").parse(text)
    assert calls_of(turn) == expected
    assert turn.content == content


@pytest.mark.parametrize(
    "text", ["Paris (France) is lovely.", "print(x)", "Call f(1) twice.", "[1, 2] (a list)"]
)
def test_pythonic_prose_with_parentheses_is_text(text):
    assert get_format("pythonic").parse(text).tool_calls == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[f(1)]", "positional arguments"),
        ("[f(a=x)]", "'x' is not a literal"),
        ("[f(a=open('/etc/passwd'))]", "not a literal"),
        ("[f(**kw)]", "kwargs"),
        ("[get_weather(city='Par", "does not parse"),
        ("[(lambda: 1)(a=1)]", "cannot call"),
    ],
)
def test_pythonic_refuses_anything_but_literals(text, message):
    with pytest.raises(ModelOutputError, match=message):
        get_format("pythonic").parse(text)


def test_llama3_drops_its_tag_but_not_a_value_that_spells_it():
    """Found by the round-trip property test: a string value "<|python_tag|>" lost its text."""
    fmt = get_format("llama3")
    text = '<|python_tag|>{"name": "A", "parameters": {"A": "<|python_tag|>"}}'
    assert [(c.name, dict(c.arguments)) for c in fmt.parse(text).tool_calls] == [
        ("A", {"A": "<|python_tag|>"})
    ]


DIGITS = "9" * 5001  # past Python's 4,300-digit limit for int(): a ValueError
HOSTILE_OUTPUT = {
    "1000 [": "[" * 1000,
    "1000 [ closed": "[" * 1000 + "]" * 1000,
    "1000 { closed": '{"a": ' * 1000 + "1" + "}" * 1000,
    "1000 {": '{"a": ' * 1000,
    "deep arguments": '[{"name": "f", "arguments": ' + '{"a": ' * 1000 + "1" + "}" * 1001 + "]",
    "deep arguments string": '[{"name": "f", "arguments": "' + "[" * 1000 + '"}]',
    "5001-digit integer": '[{"name": "f", "arguments": {"x": ' + DIGITS + "}}]",
    "5001-digit integer in a string": '[{"name": "f", "arguments": "{\\"x\\": ' + DIGITS + '}"}]',
    "hermes 1000 [": "<tool_call>" + "[" * 1000 + "</tool_call>",
    "hermes 5001 digits": f'<tool_call>{{"name": "f", "arguments": {{"x": {DIGITS}}}}}</tool_call>',
    "llama3 5001 digits": '<|python_tag|>{"name": "f", "parameters": {"x": ' + DIGITS + "}}",
    "pythonic 5001 digits": "[f(x=" + DIGITS + ")]",
    "unary chain": "[f(x=" + "-" * 100_000 + "1)]",
    "short unary chain": "[f(x=" + "-" * 950 + "1)]",
    "plus chain": "[f(x=" + "+".join(["1"] * 100_000) + ")]",
    "short plus chain": "[f(x=" + "+".join(["1"] * 950) + ")]",
    "attribute chain": "[" + ".".join(["a"] * 950) + "(x=1)]",
    "subscript chain": "[a" + "[0]" * 950 + "(x=1)]",
}


@pytest.mark.parametrize("fmt", JSON_LIKE)
@pytest.mark.parametrize("text", list(HOSTILE_OUTPUT.values()), ids=list(HOSTILE_OUTPUT))
def test_hostile_output_raises_only_model_output_errors(fmt: str, text: str) -> None:
    """Issue 20, item 6: RecursionError, ValueError and MemoryError escaped every format's
    parser; a caller (the agent loop, an evaluation) only expects ``ModelOutputError``."""
    try:
        turn = get_format(fmt).parse(text)
    except ModelOutputError as exc:
        assert exc.raw == text
    else:
        assert not turn.tool_calls or all(c.name for c in turn.tool_calls)


SUPERLINEAR_OUTPUT = {
    "x[": lambda n: "x[" * n,
    "{": lambda n: "{" * n,
    "[": lambda n: "[" * n,
    "quoted x[": lambda n: "['" + "x[" * n,
    "unclosed calls": lambda n: "[f(a=1), " * n,
    "strings and brackets": lambda n: "['[\"" * n,
    "nested 500": lambda n: '{"a": ' * 500 + "x" + " {" * n,
    "fences": lambda n: "```json\n[" * n,
    "tags": lambda n: "<tool_call>{" * n,
    "nested calls": lambda n: "[f(a=" * n + "x" + ")]" * n,
    # escaped quotes: every scan from a "[" ends up inside the same string
    "escaped quotes": lambda n: "'\\x[]" * n + "x" + "][x\\'" * n,
    "escaped json quotes": lambda n: '</tool_call>,\\]["\\"arguments": "' * n,
}


@pytest.mark.parametrize("fmt", JSON_LIKE)
@pytest.mark.parametrize("make", list(SUPERLINEAR_OUTPUT.values()), ids=list(SUPERLINEAR_OUTPUT))
def test_parsing_time_is_linear_in_the_output(fmt: str, make) -> None:
    """Issue 20, item 7: each parser must be linear in what the model wrote."""
    parse = get_format(fmt).parse
    assert_linear(lambda n: parse(make(n)), 5_000)


@pytest.mark.parametrize(
    ("fmt", "text"),
    [("pythonic", "x[" * 8_000), ("pythonic", "[f(a=" * 12_000 + "x" + ")]" * 12_000)]
    + [(fmt, "{" * 200_000) for fmt in JSON_LIKE],
    ids=["pythonic x[ x 8,000", "pythonic [f(a= x 12,000 closed"]
    + [f"{fmt} {{ x 200,000" for fmt in JSON_LIKE],
)
def test_the_inputs_that_took_seconds_take_under_one(fmt: str, text: str) -> None:
    """Issue 20, item 7: pythonic ``x[`` x 8,000 took 8.5 s (x4 per doubling) and json ``{`` x
    200,000 took 22 s. 12,000 nested calls, each span parsed in turn, took 2 s."""
    assert best_seconds(lambda: get_format(fmt).parse(text)) < 1.0
