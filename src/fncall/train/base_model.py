"""Base models for fine-tuning: the embedded GGUF models, dequantized into transformers.

Loading a GGUF through transformers dequantizes every tensor (SmolLM2-135M: seconds; the 0.5B
Qwen: about a minute and ~4 GB). The result is saved once as safetensors under
``$FNCALL_HOME/hf/<name>`` (default ``~/.cache/fncall/hf``) and reloaded from there in seconds.
transformers refuses to save a model that still carries its GGUF quantizer, so the quantizer
and ``quantization_config`` are cleared first: the weights are plain float32 by then.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fncall.errors import UserError
from fncall.models import fncall_home


def hf_cache_home() -> Path:
    return fncall_home() / "hf"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def _load_folder(folder: Path, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model, tokenizer


def _convert_gguf(gguf: Path, target: Path, dtype: Any) -> None:
    """Dequantize ``gguf`` into a safetensors folder at ``target`` (written atomically)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fncall.train.checkpoint import write_atomic_dir

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    write_atomic_dir(target, write)


def load_base_model(base: str, *, dtype: str = "float32", seed: int = 0) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for a catalogue name, a ``.gguf`` file, a Hugging Face folder, or
    ``"tiny"`` (a random tiny Llama for tests and smoke runs)."""
    import torch

    torch_dtype = getattr(torch, dtype)
    if base == "tiny":
        from fncall.train.tiny import tiny_model_and_tokenizer

        return tiny_model_and_tokenizer(seed=seed)
    from fncall.models import MODELS, gguf_file

    path = Path(base).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return _load_folder(path, torch_dtype)
    if base not in MODELS and not path.exists():
        raise UserError(
            f"base model {base!r} not found: give an embedded model ({', '.join(MODELS)}), "
            "a .gguf file, a Hugging Face model folder (with config.json), or 'tiny'"
        )
    cache = hf_cache_home() / _safe_name(base if base in MODELS else path.stem)
    if not (cache / "config.json").is_file():
        gguf = gguf_file(base)
        if gguf is None:
            raise UserError(f"{base!r} is neither a .gguf file nor a folder holding one")
        _convert_gguf(gguf, cache, torch_dtype)
    return _load_folder(cache, torch_dtype)
