"""Values in requests and calls, in the spellings people write them.

A call's value may come from the request in another spelling (``0.05`` as "5%", ``3`` as
"three", ``"USD"`` as "US dollars", ``"Europe/Paris"`` by its word "Paris"): ``given`` says
whether the request gave a call's value (the judge's grounding, ``fncall.judge``). The other
way round, ``request_values`` picks the values a request names (numbers, quoted strings, names
written with capitals) and ``unused_values`` those a call list has not used yet: a request whose
values are all used asks for no further call, one that names a value no call used yet may
(``fncall.constrain.call_count``'s coverage).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any


def argument_values(value: Any) -> list[str]:
    """The scalar values inside call arguments, as lower-case text (``2.0`` reads as ``2``)."""
    if isinstance(value, Mapping):
        return [v for item in value.values() for v in argument_values(item)]
    if isinstance(value, list | tuple):
        return [v for item in value for v in argument_values(item)]
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip().lower()
    return [text] if text else []


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def appears(value: str, text: str) -> bool:
    """Whether ``value`` occurs in ``text`` as a whole word or number (``1`` is not in ``150``).
    A number may carry a unit or a zero fraction (``18`` in "18k gold", ``238`` in "1179x238",
    ``192`` in "192.0 cm")."""
    if _NUMBER.fullmatch(value):
        zeros = "" if "." in value else r"(?:\.0+)?"
        pattern = rf"(?<![\d.]){re.escape(value)}{zeros}(?!\d|\.\d)"
    else:
        pattern = rf"(?<![\w.]){re.escape(value)}(?![\w]|\.\d)"
    return re.search(pattern, text.lower()) is not None


_NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
_ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth"
_NUMBER_WORDS, _ORDINAL_WORDS = _NUMBERS.split(), _ORDINALS.split()


def spellings(value: str) -> list[str]:
    """Ways a request may write ``value``: itself and, for a number, its percentage (``0.05`` as
    "5%"), its English word (``3`` as "three") and its ordinal (``6`` as "6th" or "sixth")."""
    out = [value]
    try:
        number = float(value)
    except ValueError:
        return out
    if not math.isfinite(number):
        return out
    if 0 < abs(number) <= 1:
        out.append(f"{round(number * 100, 6):g}")
    if number.is_integer() and 0 <= number <= 1000:
        n = int(number)
        if n < len(_NUMBER_WORDS):
            out.append(_NUMBER_WORDS[n])
        if 1 <= n <= len(_ORDINAL_WORDS):
            out.append(_ORDINAL_WORDS[n - 1])
        teen = 10 <= n % 100 <= 20
        out.append(f"{n}{'th' if teen else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}")
    return out


def abbreviates(code: str, text: str) -> bool:
    """Whether ``code`` (two to four letters) is spelled by the starts of consecutive words of
    ``text``: "USD" by "US dollars", "EUR" by "euros", "NY" by "New York", "mi" by "miles"."""
    if not (2 <= len(code) <= 4 and code.isascii() and code.isalpha()):
        return False
    words = re.findall(r"[a-z]+", text.lower())

    def spells(rest: str, i: int) -> bool:
        if not rest:
            return True
        if i >= len(words):
            return False
        word = words[i]
        return any(
            word.startswith(rest[:n]) and spells(rest[n:], i + 1) for n in range(1, len(rest) + 1)
        )

    code = code.lower()
    return any(spells(code, i) for i, word in enumerate(words) if word[0] == code[0])


def given(value: str, text: str) -> bool:
    """Whether the request (``text``) gave ``value``: one of its ``spellings`` occurs, or one
    of its words of three letters or digits or more does (``"Europe/Paris"`` for "the time in
    Paris": a value the request gave, written the way the function wants it), or it is a code
    the request's words spell (``abbreviates``: "USD" for "US dollars")."""
    return (
        any(appears(spelling, text) for spelling in spellings(value))
        or any(appears(word, text) for word in re.findall(r"[^\W_]{3,}", value))
        or abbreviates(value, text)
    )


# A name written with capitals: "Paris", "New York", "Lake Tahoe" (a run of capitalised words),
# or a code ("USD", "AAPL"). Quoted text: "..." or '...' (not an apostrophe inside a word).
_CAPITALISED = re.compile(r"(?<![\w'])[A-Z][\w'&-]*(?:[ \t]+[A-Z][\w'&-]*)*")
# Written as one value: dates, times, ranges, codes ("2024-12-24", "10:30", "978-0-13"), paths
# to a file ("photos/cat.png", not a unit such as "m/s"), e-mail addresses and links; then plain
# numbers ("-3" only where the minus is not a joint).
_COMPOUND = re.compile(
    r"https?://[^\s\"'<>]+|\b\d+(?:[-/:]\d+)+\b|[\w.-]*(?:/[\w.-]+)+\.[A-Za-z]\w*|"
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
)
# Not an exponent ("x^2") nor the zero an equation is set to ("... = 0").
_PLAIN_NUMBER = re.compile(r"(?<![\w.\-/:@^])(?<!= )-?\d+(?:\.\d+)?(?![\w\-/:@]|\.\d)")
_QUOTED = re.compile(r"\"([^\"\n]{1,80})\"|(?<!\w)'([^'\n]{1,80})'(?!\w)")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)$")
# Capitalised words that are not values: pronouns, question words, and the first words of
# requests ("Please", "Also"), wherever they stand.
_NOT_NAMES_TEXT = (
    "i i'm i'd i'll i've me my we our you your he she it they them their this that these "
    "those what what's which who whom whose when where why how is are was were do does did "
    "can could would will shall should may might must please also and or but then next "
    "thanks hi hello hey okay ok yes no the a an in on at for of to from by with"
)
_NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())
_MAX_REQUEST_VALUES = 64  # a long pasted document is not a request to cover value by value


def request_values(request: str, known: str = "") -> tuple[str, ...]:
    """The values a request names, lower-case, in order, each once: numbers ("42", "0.5"),
    quoted text, and names written with capitals ("Paris", "New York", "USD"), leaving out a
    sentence's first word and words such as "I" or "What". A name that ``known`` holds (the
    offered tools' names and descriptions: "BMI" for a BMI calculator) is the request naming
    a function, not a value. What a call list should use up; see ``unused_values``."""
    found: list[str] = []
    for match in _QUOTED.finditer(request):
        found.append((match.group(1) or match.group(2)).strip())
    for match in _CAPITALISED.finditer(request):
        words = match.group().rstrip("'-&").split()
        if _SENTENCE_START.search(request[: match.start()]):
            words = words[1:]  # "Find ..." or "Weather in ..." at a sentence's start
        while words and words[0].lower().strip(",") in _NOT_NAMES:
            words = words[1:]
        if words:
            found.append(" ".join(words))
    compounds = [m.group().rstrip(".,;:!?") for m in _COMPOUND.finditer(request)]
    found.extend(compounds)
    rest = _COMPOUND.sub(" ", request)
    found.extend(m.group() for m in _PLAIN_NUMBER.finditer(rest))
    values: list[str] = []
    known = known.lower().replace("_", " ")
    for value in found:
        value = value.lower().strip()
        if not value or value in values:
            continue
        if (
            known
            and not _NUMBER.fullmatch(value)
            and (appears(value, known) or abbreviates(value, known))
        ):
            continue  # the request naming a function ("the BMI", "the GCD"), not a value
        values.append(value)
    return tuple(values[:_MAX_REQUEST_VALUES])


def _written(value: str, text: str, numbers: list[str]) -> bool:
    if appears(value, text) or any(value in spellings(n) for n in numbers):
        return True
    words = re.findall(r"[^\W_]{3,}", value)
    return bool(words) and any(appears(word, text) for word in words)


def unused_values(values: tuple[str, ...], text: str) -> list[str]:
    """The ``values`` (from ``request_values``) that ``text`` (the calls written so far) does not
    hold in any spelling ``given`` accepts: "5" is used by ``0.05`` ("5%"), "New York" by
    ``"New York, NY"``, "Paris" by ``"Europe/Paris"``."""
    lowered = text.lower()
    numbers = _NUMBER.findall(lowered)
    return [value for value in values if not _written(value, lowered, numbers)]
