"""Training throughput: fncall's loop vs a plain Hugging Face ``Trainer`` + PEFT.

Same data, same model.

Each measurement runs in a fresh subprocess (so peak RSS belongs to that run alone): LoRA (rank 8,
all linear layers) for ``--steps`` optimizer steps on the same encoded examples, same batch size,
learning rate and sequence lengths. Tokens/s counts non-padding tokens; the first
``--warmup`` steps are excluded. The median of ``--repeats`` runs per side is reported.

    python benchmarks/bench_train.py                      # tiny random Llama (seconds)
    python benchmarks/bench_train.py --model smollm2-135m --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "train.json"


def _data(model_name: str, count: int, max_seq_len: int):  # type: ignore[no-untyped-def]
    from fncall.train.base_model import load_base_model
    from fncall.train.collate import encode_examples
    from fncall.train.generate import generate_examples

    model, tokenizer = load_base_model(model_name)
    examples = generate_examples(count, seed=0, max_distractors=1)
    encoded = encode_examples(examples, tokenizer, format="hermes", max_seq_len=max_seq_len)
    return model, tokenizer, encoded


def _ours(args: argparse.Namespace) -> dict[str, float]:
    from fncall.train.config import config_from_dict
    from fncall.train.loop import Trainer
    from fncall.train.methods import get_method

    model, tokenizer, encoded = _data(args.model, args.examples, args.max_seq_len)
    config = config_from_dict(
        {
            "model": {"base": args.model},
            "data": {"generate": {"examples": 1}},
            "method": {"name": "lora", "rank": 8, "alpha": 16, "dropout": 0.0},
            "optim": {"lr": 1e-4, "warmup_steps": 1, "grad_clip": 1.0},
            "train": {
                "output_dir": tempfile.mkdtemp(),
                "max_steps": args.warmup,
                "batch_size": args.batch_size,
                "save_every": 10**6,
                "eval_every": 10**6,
                "progress": False,
                "log_batches": False,
                "cpu": True,
            },
        }
    )
    model = get_method("lora", rank=8, alpha=16.0, dropout=0.0).apply(model)
    trainer = Trainer(config, model, tokenizer, encoded, None)
    trainer.fit(resume=False)  # warm-up steps
    trainer.config.train.max_steps = args.warmup + args.steps
    tokens_before, started = trainer.state.tokens, time.perf_counter()
    trainer.fit(resume=False)
    seconds = time.perf_counter() - started
    return {"tokens_per_s": (trainer.state.tokens - tokens_before) / seconds, "seconds": seconds}


def _baseline(args: argparse.Namespace) -> dict[str, float]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from fncall.train.collate import Collator, pad_token_id

    model, tokenizer, encoded = _data(args.model, args.examples, args.max_seq_len)
    model = get_peft_model(
        model,
        LoraConfig(
            r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
        ),
    )
    collate = Collator(pad_token_id=pad_token_id(tokenizer))

    class Rows(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return len(encoded)

        def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
            return encoded[i]

    marks: dict[str, float] = {}
    tokens = {"n": 0}

    class Clock(TrainerCallback):
        def on_step_end(self, _args, state, _control, **_):  # type: ignore[no-untyped-def]
            if state.global_step == args.warmup:
                marks["start"] = time.perf_counter()

    def counting_collate(batch):  # type: ignore[no-untyped-def]
        out = collate(batch)
        if "start" in marks:
            tokens["n"] += int(out["attention_mask"].sum())
        return out

    training_args = TrainingArguments(
        output_dir=tempfile.mkdtemp(),
        max_steps=args.warmup + args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=1e-4,
        warmup_steps=1,
        max_grad_norm=1.0,
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=Rows(),
        data_collator=counting_collate,
        callbacks=[Clock()],
    )
    trainer.train()
    seconds = time.perf_counter() - marks["start"]
    return {"tokens_per_s": tokens["n"] / seconds, "seconds": seconds}


def _child(args: argparse.Namespace) -> None:
    result = _ours(args) if args.child == "ours" else _baseline(args)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--max-seq-len", type=int, default=768)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "baseline": []}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for _ in range(args.repeats):
        for side in ("ours", "baseline"):  # interleaved, so load drift hits both sides alike
            command = [
                sys.executable,
                __file__,
                "--child",
                side,
                "--model",
                args.model,
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--batch-size",
                str(args.batch_size),
                "--examples",
                str(args.examples),
                "--max-seq-len",
                str(args.max_seq_len),
            ]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
            runs[side].append(json.loads(line[len("RESULT ") :]))
    summary = {
        side: {key: round(statistics.median(r[key] for r in rows), 1) for key in rows[0]}
        for side, rows in runs.items()
    }
    report = {
        "benchmark": "LoRA r=8 fine-tuning throughput, fncall loop vs transformers Trainer + PEFT",
        "model": args.model,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "max_seq_len": args.max_seq_len,
        "repeats": args.repeats,
        "threads": os.cpu_count(),
        "median": summary,
        "throughput_ratio_ours_over_baseline": round(
            summary["ours"]["tokens_per_s"] / summary["baseline"]["tokens_per_s"], 3
        ),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
