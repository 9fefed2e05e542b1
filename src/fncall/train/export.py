"""What a run leaves behind: the adapter, a merged model, the model card; and loading them back.

* ``adapter/``: only the trained parameters. LoRA and prompt tuning use PEFT's own folder format;
  the other methods write ``trainable.safetensors`` plus ``fncall_adapter.json`` (method, options,
  base), which ``load_finetuned`` applies on top of the base model.
* ``merged/``: a plain transformers folder (safetensors, config, tokenizer with its chat
  template) that ``AutoModelForCausalLM.from_pretrained`` and fncall's transformers engine load
  directly. LoRA is merged into the weights; BitFit's added biases are declared in a Llama config
  (``attention_bias``/``mlp_bias``). Bottleneck adapters and soft prompts change the computation
  itself, so they have no merged form: load them with ``load_finetuned``.
* ``model.gguf`` (``export.gguf: q8_0|f16|f32``): the merged model for the llama.cpp engine,
  written over the base model's GGUF as template (``fncall.train.gguf_export``). Bases that are
  Hugging Face folders have no template: use llama.cpp's ``convert_hf_to_gguf.py merged/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fncall.errors import UserError
from fncall.models import ADAPTER_MANIFEST
from fncall.train.checkpoint import load_trainable, trainable_tensors, write_atomic_dir
from fncall.train.config import RunConfig, configured_method


def _is_peft(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def save_adapter(model: Any, config: RunConfig, directory: Path) -> Path:
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        if _is_peft(model):
            model.save_pretrained(tmp)
        else:
            save_file(trainable_tensors(model), str(tmp / "trainable.safetensors"))
        (tmp / ADAPTER_MANIFEST).write_text(
            json.dumps(
                {
                    "method": asdict(config.method),
                    "base": config.model.base,
                    "format": config.model.format,
                },
                indent=1,
            )
        )

    return write_atomic_dir(directory, write)


def merged_model(model: Any, config: RunConfig) -> Any | None:
    """The trained model as one plain transformers model (LoRA folded into the weights), or
    None when it has no merged form: the method decides (``PeftMethod.merge``, module doc)."""
    return configured_method(config).merge(model)


def save_merged(merged: Any, tokenizer: Any, config: RunConfig, directory: Path) -> Path:
    """Write a model from ``merged_model`` as a transformers folder (safetensors)."""
    if config.model.chat_template:
        tokenizer.chat_template = config.model.chat_template

    def write(tmp: Path) -> None:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return write_atomic_dir(directory, write)


def load_finetuned(path: str | Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a ``merged/`` folder or an ``adapter/`` folder of a run."""
    from fncall.train.base_model import load_base_model
    from fncall.train.methods import get_method

    path = Path(path)
    if (path / "config.json").is_file():
        return load_base_model(str(path))
    meta_file = path / ADAPTER_MANIFEST
    if not meta_file.is_file():
        raise UserError(
            f"{str(path)!r} is neither a merged model folder nor an fncall adapter folder"
        )
    meta = json.loads(meta_file.read_text())
    model, tokenizer = load_base_model(meta["base"])
    options = dict(meta["method"])
    name = options.pop("name")
    if (path / "adapter_config.json").is_file():
        from peft import PeftModel

        return PeftModel.from_pretrained(model, path), tokenizer
    model = get_method(name, **options).apply(model)
    from safetensors.torch import load_file

    load_trainable(model, load_file(str(path / "trainable.safetensors")), source=str(path))
    return model, tokenizer


def _table(scores: dict[str, float] | None) -> list[str]:
    if not scores:
        return ["(not measured yet)"]
    return ["| category | score |", "|---|---|"] + [f"| {k} | {v} |" for k, v in scores.items()]


def write_model_card(directory: Path, config: RunConfig, report: dict[str, Any]) -> Path:
    """``MODEL_CARD.md``: data, method, hyper-parameters, and before/after scores when given."""
    e, m, o, t = config.export, config.method, config.optim, config.train
    lines = [
        f"# {config.name}",
        "",
        f"Fine-tuned from `{config.model.base}` for function calling with fncall "
        f"(tool-call format `{config.model.format}`).",
        "",
        "## Data",
        "",
        f"- training examples: {report.get('train_examples')}, validation: "
        f"{report.get('validation_examples')}, test: {report.get('test_examples')}",
        f"- imported from: {', '.join(config.data.train) or 'nothing'}; generated: "
        f"{config.data.generate.examples} from the `{config.data.generate.library}` library "
        f"(function masking p={config.data.generate.masking_probability:.2f})",
        f"- refused by the BFCL contamination guard: {report.get('contaminated', 0)}; "
        f"dropped as longer than {config.data.max_seq_len} tokens: {report.get('too_long', 0)}",
        "",
        "## Method",
        "",
        f"- `{m.name}`: {report.get('trainable_parameters')} trainable parameters of "
        f"{report.get('total_parameters')} ({report.get('trainable_percent', 0):.3f} %)",
        f"- options: {json.dumps({k: v for k, v in asdict(m).items() if k != 'name'})}",
        "",
        "## Hyper-parameters",
        "",
        f"- optimizer {o.name}, lr {o.lr}, weight decay {o.weight_decay}, schedule {o.schedule}, "
        f"warm-up {o.warmup_steps or o.warmup_ratio}, gradient clip {o.grad_clip}",
        f"- steps {report.get('steps')} of {t.max_steps} "
        f"(early stop: {report.get('stopped_early')}), "
        f"batch {t.batch_size} x accumulation {t.grad_accum}, seed {t.seed}, "
        f"max sequence length {config.data.max_seq_len}",
        f"- best validation loss {report.get('best_val_loss')} at step {report.get('best_step')}",
        "",
        "## Scores",
        "",
        "Before:",
        "",
        *_table(e.scores_before),
        "",
        "After:",
        "",
        *_table(e.scores_after),
        "",
        "## Files",
        "",
        "- `adapter/`: trained parameters only; `merged/`: a full transformers model "
        "(absent for adapter and prompt tuning, which load with `fncall.train.load_finetuned`)",
        "- `model.gguf` (when `export.gguf` is set): the merged model for llama.cpp "
        "(`fncall eval run --model model.gguf`)",
        "",
    ]
    path = Path(directory) / "MODEL_CARD.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
