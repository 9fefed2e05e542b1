"""``fncall serve``: an OpenAI-compatible server with a web playground at ``/``.

    fncall serve --tools examples/my_tools.py --execute-tools
    fncall serve --trace-db runs/trace.db --export-training-data runs/train.jsonl  # and exit

Binding to anything but a loopback address needs an API key (``--api-key`` or the
``FNCALL_API_KEY`` environment variable); the key is never printed or logged.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from fncall.cli import add_judge_argument, judge_of
from fncall.cli.call import add_retrieval_argument, retrieving
from fncall.errors import UserError
from fncall.models import DEFAULT_MODEL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="NAME|PATH",
        help=f"catalogue name, .gguf file or model folder (default {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; others need --api-key)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--tools", metavar="FILE.py", help="Python file whose functions become the server's tools"
    )
    add_retrieval_argument(parser)
    parser.add_argument(
        "--execute-tools",
        action="store_true",
        help="run calls to the --tools functions on the server and answer with "
        "the model's follow-up",
    )
    parser.add_argument(
        "--tool-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="time limit of one executed tool call (default 30)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="require 'Authorization: Bearer KEY' (default: $FNCALL_API_KEY)",
    )
    parser.add_argument(
        "--trace-db", metavar="PATH", help="append every exchange to this SQLite database"
    )
    parser.add_argument(
        "--export-training-data",
        metavar="OUT.jsonl",
        help="with --trace-db: write its exchanges as OpenAI fine-tuning JSONL and exit",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=32,
        help="requests that may wait for the model before new ones get 503",
    )
    parser.add_argument(
        "--max-tokens-cap",
        type=int,
        default=4096,
        help="largest max_tokens a request may ask for (default 4096)",
    )
    parser.add_argument(
        "--format", default="auto", help="tool-call format for the local model (default: auto)"
    )
    parser.add_argument(
        "--no-constrain", action="store_true", help="decode without the tool-call grammar"
    )
    add_judge_argument(parser)
    parser.add_argument(
        "--prefix-cache-mb",
        type=float,
        default=None,
        metavar="MIB",
        help="memory for saved KV prefixes of other tool sets and clients "
        "(default 128; 0 keeps only the live one); they are also kept on disk for the next "
        "server, up to $FNCALL_PREFIX_STORE_MB (default 256; 0: none)",
    )


def run(args: argparse.Namespace) -> int:
    if args.export_training_data:
        return _export(args)

    from fncall.serve.app import check_exposure

    api_key = args.api_key or os.environ.get("FNCALL_API_KEY") or None
    check_exposure(args.host, api_key)  # before loading a model: fail fast
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {args.port}")
    if args.prefix_cache_mb is not None and not args.prefix_cache_mb >= 0:
        raise UserError(f"--prefix-cache-mb must be a number >= 0, got {args.prefix_cache_mb}")
    engine_options = {}
    if args.prefix_cache_mb is not None:
        engine_options["prefix_cache_mb"] = args.prefix_cache_mb

    import uvicorn

    from fncall.engine import load_engine
    from fncall.pipeline import LocalChat
    from fncall.serve.app import create_app
    from fncall.tools import load_tool_file

    tools = list(load_tool_file(args.tools)) if args.tools else []
    if args.execute_tools and not tools:
        raise UserError("--execute-tools needs --tools FILE.py")
    library: Any = retrieving(tools, args.retrieve_k)
    print(f"fncall serve: loading {args.model} ...", file=sys.stderr)
    engine = load_engine(args.model, **engine_options)
    model = LocalChat(
        engine,
        format=args.format,
        constrained=not args.no_constrain,
        judge=judge_of(args),
        count_threshold=args.count,
        count_coverage=args.count_coverage,
    )
    model_name = engine.name or str(args.model)
    app = create_app(
        model,
        model_name=model_name,
        tools=library,
        api_key=api_key,
        execute_tools=args.execute_tools,
        tool_timeout=args.tool_timeout,
        trace_db=args.trace_db,
        max_waiting=args.max_queue,
        max_tokens_cap=args.max_tokens_cap,
    )
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"fncall serve: model {model_name!r}, {len(tools)} server tool(s)"
        f"{' (executed)' if args.execute_tools else ''}"
        f"{f', {args.retrieve_k} retrieved per request' if args.retrieve_k else ''}, API key "
        f"{'required' if api_key else 'not required'}\n"
        f"  API:        http://{shown_host}:{args.port}/v1 (chat/completions, responses)\n"
        f"  playground: http://{shown_host}:{args.port}/",
        file=sys.stderr,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _export(args: argparse.Namespace) -> int:
    from fncall.serve.trace import export_training_data

    if not args.trace_db:
        raise UserError("--export-training-data needs --trace-db PATH (the database to read)")
    count = export_training_data(args.trace_db, args.export_training_data)
    print(f"wrote {count} example(s) to {args.export_training_data}")
    return 0
