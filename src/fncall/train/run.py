"""The fine-tuning recipe: one readable function wiring the library pieces with a ``RunConfig``.

base model -> data (import + generate) -> contamination guard -> split -> encode (loss mask)
-> PEFT method -> Trainer (accelerate) -> adapter / merged model / model card / curves
"""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from fncall.errors import UserError
from fncall.train.config import RunConfig, accelerate_precision, save_config
from fncall.train.data import TrainingExample, load_examples, save_examples, split_examples
from fncall.warnings import FncallWarning


def load_function_library(source: str) -> list[Any]:
    """``builtin``, a JSON file of tools (OpenAI ``tools`` list), or a Python file whose public
    functions (or a ``TOOLS`` list) become tools."""
    from fncall.tools.schema import tool_from_function
    from fncall.train.data import tool_from_json
    from fncall.train.library import BUILTIN_LIBRARY
    from fncall.types import Tool

    if source == "builtin":
        return list(BUILTIN_LIBRARY)
    path = Path(source)
    if not path.is_file():
        raise UserError(
            f"function library {source!r} not found (use 'builtin', a .json or a .py file)"
        )
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        return [tool_from_json(item) for item in (data if isinstance(data, list) else [data])]
    if path.suffix != ".py":
        raise UserError(f"function library {source!r} must be a .json or .py file")
    spec = importlib.util.spec_from_file_location(f"fncall_user_tools_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot import {source!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    listed = getattr(module, "TOOLS", None)
    if listed is not None:
        return [t if isinstance(t, Tool) else tool_from_function(t) for t in listed]
    functions = [
        value
        for name, value in vars(module).items()
        if callable(value)
        and not name.startswith("_")
        and getattr(value, "__module__", None) == spec.name
        and not isinstance(value, type)
    ]
    if not functions:
        raise UserError(f"{source!r} defines no public functions (or a TOOLS list) to use as tools")
    return [tool_from_function(f) for f in functions]


def prepare_examples(config: RunConfig) -> tuple[list[TrainingExample], dict[str, Any]]:
    """Imported plus generated examples, with contaminated ones removed."""
    from fncall.train.generate import DEFAULT_MIX, Generator

    examples: list[TrainingExample] = load_examples(config.data.train) if config.data.train else []
    g = config.data.generate
    if g.examples:
        generator = Generator(
            library=load_function_library(g.library),
            seed=config.train.seed,
            mix=g.mix or DEFAULT_MIX,
            masking_probability=g.masking_probability,
            max_distractors=g.max_distractors,
        )
        examples.extend(generator.generate(g.examples))
    info: dict[str, Any] = {"imported_and_generated": len(examples), "contaminated": 0}
    if config.data.contamination_guard:
        from fncall.train.contamination import bfcl_guard

        examples, refused = bfcl_guard().filter(examples)
        info["contaminated"] = len(refused)
        info["contaminated_sources"] = [e.source for e, _ in refused[:20]]
    if not examples:
        raise UserError("no training examples are left (check data.train and data.generate)")
    return examples, info


def estimate_memory_bytes(model: Any, trainable: int, *, optimizer: str, batch_tokens: int) -> int:
    """Weights + gradients + optimizer states (+ a rough activation term)."""
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    states = 2 if optimizer == "adamw" else 1
    hidden = getattr(getattr(model, "config", None), "hidden_size", 1024)
    layers = getattr(getattr(model, "config", None), "num_hidden_layers", 24)
    activations = batch_tokens * hidden * layers * 4 * 16
    return int(total + trainable * 4 * (1 + states) + activations)


def _warn_memory(needed: int) -> None:
    try:
        import psutil

        available = int(psutil.virtual_memory().available)
    except ImportError:
        return
    if needed > available:
        warnings.warn(
            f"training needs about {needed / 2**30:.1f} GiB but only {available / 2**30:.1f} GiB "
            "is available: risk of running out of memory (lower train.batch_size or "
            "data.max_seq_len, or use lora/bitfit instead of full)",
            FncallWarning,
            stacklevel=3,
        )


def run_training(config: RunConfig, *, resume: bool | None = None) -> dict[str, Any]:
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from fncall.train.base_model import load_base_model
    from fncall.train.collate import encode_examples
    from fncall.train.export import merged_model, save_adapter, save_merged, write_model_card
    from fncall.train.gguf_export import export_gguf, template_for
    from fncall.train.loop import Trainer
    from fncall.train.methods import count_parameters, get_method

    accelerator = Accelerator(cpu=config.train.cpu, mixed_precision=accelerate_precision(config))
    set_seed(config.train.seed)
    out = Path(config.train.output_dir)
    # checked before training, so a base without a GGUF template fails now, not after hours
    gguf_template = template_for(config.model.base) if config.export.gguf else None
    model, tokenizer = load_base_model(config.model.base, seed=config.train.seed)
    if config.model.dropout is not None:
        for module in model.modules():
            if hasattr(module, "attention_dropout"):
                module.attention_dropout = config.model.dropout

    examples, info = prepare_examples(config)
    splits = split_examples(
        examples,
        validation=config.data.validation_fraction,
        test=config.data.test_fraction,
        seed=config.train.seed,
    )
    encode = dict(
        format=config.model.format,
        max_seq_len=config.data.max_seq_len,
        chat_template=config.model.chat_template,
    )
    train_set = encode_examples(splits.train, tokenizer, **encode)  # type: ignore[arg-type]
    val_set = encode_examples(splits.validation, tokenizer, **encode)  # type: ignore[arg-type]
    if len(train_set) == 0:
        raise UserError(
            "every training example is longer than "
            f"data.max_seq_len={config.data.max_seq_len} tokens"
        )
    total = count_parameters(model, trainable_only=False)
    options = {k: v for k, v in vars(config.method).items() if k != "name"}
    method = get_method(config.method.name, **options, tokenizer=tokenizer)
    model = method.apply(model)
    trainable = method.trainable_parameters(model)
    report: dict[str, Any] = {
        **info,
        "method": config.method.name,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "trainable_percent": 100.0 * trainable / max(total, 1),
        "train_examples": len(train_set),
        "validation_examples": len(val_set),
        "test_examples": len(splits.test),
        "too_long": train_set.dropped_too_long + val_set.dropped_too_long,
        "device": str(accelerator.device),
        "mixed_precision": accelerator.mixed_precision,
        "processes": accelerator.num_processes,
    }
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.yaml")
        for name, part in (
            ("train", splits.train),
            ("validation", splits.validation),
            ("test", splits.test),
        ):
            save_examples(part, out / "data" / f"{name}.jsonl")
        print(
            f"{config.method.name}: {trainable:,} trainable parameters of {total:,} "
            f"({report['trainable_percent']:.3f} %); {len(train_set)} training examples "
            f"({report['too_long']} too long, {info['contaminated']} refused as BFCL-contaminated)",
            file=sys.stderr,
        )
    batch_tokens = config.train.batch_size * config.data.max_seq_len
    _warn_memory(
        estimate_memory_bytes(
            model, trainable, optimizer=config.optim.name, batch_tokens=batch_tokens
        )
    )

    trainer = Trainer(
        config,
        model,
        tokenizer,
        train_set,
        val_set,
        val_examples=splits.validation,
        accelerator=accelerator,
    )
    result = trainer.fit(resume=resume)
    state = result.state
    report.update(
        {
            "steps": state.step,
            "stopped_early": state.stopped_early,
            "best_val_loss": None if state.best_step == 0 else state.best_val_loss,
            "best_step": state.best_step,
            "tokens_per_second": round(result.tokens_per_second, 1),
            "resumed_from": str(result.resumed_from) if result.resumed_from else None,
            "final_train_loss": state.history[-1]["train_loss"] if state.history else None,
            "first_train_loss": state.history[0]["train_loss"] if state.history else None,
        }
    )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final = trainer.unwrapped
        if config.export.adapter:
            report["adapter_dir"] = str(save_adapter(final, config, out / "adapter"))
        merged = merged_model(final, config) if config.export.merged else None
        report["merged_dir"] = None
        if merged is not None:
            report["merged_dir"] = str(save_merged(merged, tokenizer, config, out / "merged"))
            if gguf_template is not None:
                report["gguf"] = str(
                    export_gguf(
                        merged,
                        gguf_template,
                        out / "model.gguf",
                        outtype=config.export.gguf or "q8_0",
                        chat_template=config.model.chat_template,
                        name=config.name,
                    )
                )
        if config.export.model_card:
            write_model_card(out, config, report)
        (out / "report.json").write_text(json.dumps(report, indent=1))
    return report
