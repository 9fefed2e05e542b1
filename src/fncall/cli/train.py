"""``fncall train``: fine-tune from a YAML recipe; ``fncall train data ...``: make and check data.

fncall train --config recipes/lora_smollm2.yaml --set lr=1e-4 --set method.rank=16
fncall train --config recipes/lora_smollm2.yaml --resume        # (automatic anyway)
fncall train data generate --tools my_tools.py --count 2000 --out data.jsonl
fncall train data check data.jsonl more_data/
"""

from __future__ import annotations

import argparse
import json
import sys

from fncall.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML run config (see recipes/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an option, e.g. optim.lr=1e-4 or method.rank=16 (unique leaf names alone)",
    )
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        dest="resume",
        action="store_true",
        default=None,
        help="resume from the output folder's last checkpoint (the default when one exists)",
    )
    resume.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="refuse to continue an existing run's checkpoints",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    sub = parser.add_subparsers(dest="train_command", metavar="{data}")
    data = sub.add_parser("data", help="generate or check training data")
    data_sub = data.add_subparsers(dest="data_command", metavar="{generate,check}", required=True)
    generate = data_sub.add_parser("generate", help="generate examples from a function library")
    generate.add_argument(
        "--tools",
        default="builtin",
        help="'builtin', a .py file of functions, or a .json list of tools",
    )
    generate.add_argument("--count", type=int, default=1000, help="how many examples")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--masking-probability", type=float, default=2 / 3)
    generate.add_argument(
        "--no-guard", action="store_true", help="skip the BFCL contamination guard"
    )
    generate.add_argument("--out", required=True, help="output JSON Lines file")
    check = data_sub.add_parser("check", help="import training files and report what they hold")
    check.add_argument("paths", nargs="+", help="files or folders (OpenAI, ShareGPT/Hermes, BFCL)")


def _generate(args: argparse.Namespace) -> int:
    from fncall.train.data import save_examples
    from fncall.train.generate import Generator
    from fncall.train.run import load_function_library

    if args.count < 1:
        raise UserError(f"--count must be at least 1, got {args.count}")
    if not 0 <= args.masking_probability <= 1:
        raise UserError(f"--masking-probability must be in [0, 1], got {args.masking_probability}")
    generator = Generator(
        library=load_function_library(args.tools),
        seed=args.seed,
        masking_probability=args.masking_probability,
    )
    examples = generator.generate(args.count)
    refused = 0
    if not args.no_guard:
        from fncall.train.contamination import bfcl_guard

        examples, rejected = bfcl_guard().filter(examples)
        refused = len(rejected)
    written = save_examples(examples, args.out)
    print(f"wrote {written} examples to {args.out} ({refused} refused as BFCL-contaminated)")
    return 0


def _check(args: argparse.Namespace) -> int:
    from collections import Counter

    from fncall.train.data import load_examples

    examples = load_examples(args.paths)
    calls = Counter(len(e.messages[-1].tool_calls) for e in examples)
    print(
        json.dumps(
            {
                "examples": len(examples),
                "calls_in_target": {str(k): v for k, v in sorted(calls.items())},
                "tools_per_example": round(
                    sum(len(e.tools) for e in examples) / max(len(examples), 1), 2
                ),
            },
            indent=1,
        )
    )
    return 0


def run(args: argparse.Namespace) -> int:
    if args.train_command == "data":
        return _generate(args) if args.data_command == "generate" else _check(args)
    from fncall.train.config import load_config

    if args.config is None and not args.overrides:
        raise UserError("give --config FILE (see recipes/) and/or --set key=value options")
    config = load_config(args.config, args.overrides)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    from fncall.train.run import run_training

    report = run_training(config, resume=args.resume)
    print(json.dumps(report, indent=1), file=sys.stdout)
    return 0
