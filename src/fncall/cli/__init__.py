"""The ``fncall`` command line. Each command lives in its own module of this package.

A command module defines ``add_arguments(parser)`` and ``run(args) -> int``. The parser is built
from the static ``COMMANDS`` table (name, module, one-line help), and only the module of the
command being run is imported, so ``fncall --help`` lists every command without loading any of
them (nor the engines, servers or torch they pull in).
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Sequence
from typing import Any

from fncall.errors import FncallError, UserError

# command name -> (module under fncall.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("models", "list the embedded models and install (assemble) them"),
    "call": (
        "call",
        "ask a model one question against a function library; print calls, results",
    ),
    "chat": ("chat", "interactive chat with tools, streaming tokens"),
    "eval": ("eval", "score a model on BFCL-format data (run, report, compare)"),
    "train": ("train", "fine-tune a model for function calling from a YAML recipe"),
    "serve": ("serve", "OpenAI-compatible server with a web playground"),
    "mcp-serve": ("mcp_serve", "expose a Python function library as an MCP server over stdio"),
}


def add_judge_argument(parser: argparse.ArgumentParser) -> None:
    """``--judge auto|off|THRESHOLD`` and ``--count auto|off|THRESHOLD``: the decision settings
    of the commands that run a local model."""
    parser.add_argument(
        "--count",
        default="auto",
        type=count_option,
        metavar="auto|off|THRESHOLD",
        help="how many calls a list gets (fncall.constrain.call_count): auto (the default "
        "setting), off (greedy decoding decides), or the log-odds of another call over the "
        "list's end at which the list goes on",
    )
    parser.add_argument(
        "--count-coverage",
        default="auto",
        type=coverage_option,
        metavar="auto|off|MORE,FEWER",
        help="with --count, let the request's values move the threshold "
        "(fncall.constrain.call_count.Coverage): MORE log-odds easier to go on while a value the "
        "request names is unused, FEWER harder once all are used; auto: the format's setting",
    )
    parser.add_argument(
        "--judge",
        default="auto",
        type=judge_option,
        metavar="auto|off|THRESHOLD",
        help="check each call against the request before it is made (fncall.judge): auto "
        "(default: on where the engine can score), off, or the log-odds threshold a call must "
        "reach",
    )
    parser.add_argument(
        "--judge-similarity",
        default=None,
        type=similarity_option,
        metavar="COSINE",
        help="with the judge, also require a called function's description to be at least this "
        "close to the request under the packaged embedding model (fncall.judge, step 4; needs "
        "the embeddings extra; off by default)",
    )
    parser.add_argument(
        "--judge-question",
        default=None,
        choices=sorted(FIRST_TURN_QUESTIONS),
        help="when the judge asks its question on a turn that answers the user: always, "
        "unnamed (only when the request names none of the called functions), unsure (also when "
        "the model drafted the call with a probability below 0.9), or after-results (never on "
        "such a turn); default: the model's setting (fncall.judge.MODEL_JUDGES)",
    )
    parser.add_argument(
        "--judge-sure",
        default=None,
        type=probability_option,
        metavar="P",
        help="with --judge-question unsure, the probability of the draft's first token from "
        "which a call to a function the request names is kept without the question (default "
        "0.9): higher asks more often",
    )


# --judge-question's choices as Judge(first_turn_question=...) takes them.
FIRST_TURN_QUESTIONS: dict[str, bool | str] = {
    "always": True,
    "unnamed": "unnamed",
    "unsure": "unsure",
    "after-results": False,
}


def _number_from(value: str, low: float, high: float, what: str) -> float:
    """``value`` as a number from ``low`` to ``high``, else argparse's error naming ``what``."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not low <= number <= high:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected {what} from {low:g} to {high:g}, got {value!r}")
    return number


def similarity_option(value: str) -> float:
    return _number_from(value, -1, 1, "a cosine")


def probability_option(value: str) -> float:
    return _number_from(value, 0, 1, "a probability")


def judge_of(args: argparse.Namespace) -> Any:
    """``--judge`` with ``--judge-similarity``, ``--judge-question`` and ``--judge-sure`` folded
    in, as ``LocalChat(judge=...)`` takes it. A threshold (``--judge -0.5``) changes only the
    threshold of the model's own judge (``fncall.judge.MODEL_JUDGES``): the 0.5B still asks its
    question only after tool results."""
    changes: dict[str, Any] = {}
    if isinstance(args.judge, float):
        changes["threshold"] = args.judge
    similarity = getattr(args, "judge_similarity", None)
    if similarity is not None:
        changes["min_similarity"] = similarity
    question = getattr(args, "judge_question", None)
    if question is not None:
        changes["first_turn_question"] = FIRST_TURN_QUESTIONS[question]
    sure = getattr(args, "judge_sure", None)
    if sure is not None:
        changes["sure"] = sure
    if not changes:
        return args.judge
    if args.judge is None:
        named = [
            f"--judge-{name}"
            for name, given in (("similarity", similarity), ("question", question), ("sure", sure))
            if given is not None
        ]
        verb = "needs" if len(named) == 1 else "need"
        listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
        raise UserError(f"{listed} {verb} the judge: leave out --judge off")
    from dataclasses import replace

    from fncall.judge import UNSURE, Judge, default_judge

    model = getattr(args, "model", None)
    judge = replace(
        args.judge if isinstance(args.judge, Judge) else default_judge(model), **changes
    )
    if sure is not None and judge.first_turn_question != UNSURE:
        raise UserError(
            "--judge-sure only matters when the judge asks about unsure drafts: add "
            "--judge-question unsure"
        )
    return judge


def judge_option(value: str) -> object:
    """``--judge``'s value: "auto", None (off) or the threshold (``judge_of`` builds the judge)."""
    if value == "auto":
        return "auto"
    if value == "off":
        return None
    try:
        threshold = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected auto, off or a number (the threshold), got {value!r}"
        ) from None
    if threshold != threshold:
        raise argparse.ArgumentTypeError("the threshold must be a number, got nan")
    return threshold  # judge_of puts it in the model's own judge


def count_option(value: str) -> object:
    """``--count``'s value as ``LocalChat(count_threshold=...)`` takes it."""
    if value in ("auto", "off"):
        return "auto" if value == "auto" else None
    try:
        threshold = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected auto, off or a number (the threshold), got {value!r}"
        ) from None
    if threshold != threshold:
        raise argparse.ArgumentTypeError("the threshold must be a number, got nan")
    return threshold


def coverage_option(value: str) -> object:
    """``--count-coverage``'s value as ``LocalChat(count_coverage=...)`` takes it."""
    if value in ("auto", "off"):
        return "auto" if value == "auto" else None
    parts = value.split(",")
    try:
        more, fewer = (float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected auto, off or MORE,FEWER (two log-odds >= 0, e.g. 2,2), got {value!r}"
        ) from None
    if not all(0 <= x < float("inf") for x in (more, fewer)):  # NaN fails too
        raise argparse.ArgumentTypeError(
            f"expected auto, off or MORE,FEWER (two log-odds >= 0, e.g. 2,2), got {value!r}"
        )
    return (more, fewer)


def _command_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, if any: the top-level parser takes no options besides -h."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in COMMANDS else None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``fncall`` parser: every command with its help; the arguments of ``command`` only,
    whose module alone is imported."""
    parser = argparse.ArgumentParser(prog="fncall", description="LLM function calling, offline.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        if name != command:
            continue
        try:
            module = importlib.import_module(f"fncall.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"fncall.cli.{module_name}":
                raise
            sub.set_defaults(_missing=True)
            continue
        module.add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(arguments))
    args = parser.parse_args(arguments)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if getattr(args, "_missing", False):
        print(
            f"fncall: the '{args.command}' command is not available in this build", file=sys.stderr
        )
        return 2
    module = importlib.import_module(f"fncall.cli.{args._module}")
    try:
        return int(module.run(args) or 0)
    except FncallError as exc:
        print(f"fncall {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fncall {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
