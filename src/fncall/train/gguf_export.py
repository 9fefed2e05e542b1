"""Write a fine-tuned model as GGUF for the llama.cpp engine, using its base GGUF as the template.

The embedded base models are GGUF files, and fine-tuning (LoRA merged, BitFit, full, frozen
layers) changes tensor values, not the architecture. So the new file is the base file with new
tensors: every metadata key (architecture, rope, tokenizer, chat template) is copied from the
template, and each tensor is replaced by the fine-tuned one, named by ``gguf``'s own
Hugging Face -> GGUF tensor map. Two details make it right:

* llama.cpp stores the query and key projections of ``llama`` models with the rotary halves
  interleaved (its converter permutes them, and transformers un-permutes them when it reads a
  GGUF), so those weights and biases are permuted back here. ``qwen2`` uses the other rotary
  layout and needs nothing.
* Biases the base lacks (BitFit adds them to Llama's linear layers) are written as
  ``blk.N.<layer>.bias``, which llama.cpp loads when present.

Tensors only the template has (e.g. ``rope_freqs``) are copied as they are. Linear weights are
written as ``q8_0`` (default), ``f16`` or ``f32``; 1-D tensors (norms, biases) stay ``f32``.
Bases that are not GGUF files have no template: convert their merged folder with llama.cpp's
``convert_hf_to_gguf.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fncall.errors import UserError
from fncall.train.config import GGUF_OUTTYPES

PERMUTED_ARCHS = frozenset({"llama"})
SUPPORTED_ARCHS = frozenset({"llama", "qwen2"})
_SKIPPED_KEYS = ("GGUF.", "general.architecture", "general.file_type")


def _gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise UserError("GGUF export needs the gguf package: pip install 'fncall[train]'") from None
    return gguf


def _unpermute_rotary(weight: np.ndarray, heads: int) -> np.ndarray:
    """Hugging Face's rotary layout -> llama.cpp's (the inverse of what transformers undoes)."""
    shape = weight.shape
    return (
        weight.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
    )


class _Template:
    """The base GGUF: its metadata, tensor names and architecture numbers."""

    def __init__(self, path: Path) -> None:
        gguf = _gguf()
        if not path.is_file():
            raise UserError(f"base GGUF {str(path)!r} does not exist")
        self.path = path
        self.reader = gguf.GGUFReader(str(path))
        arch_field = self.reader.fields.get("general.architecture")
        self.arch = str(arch_field.contents()) if arch_field is not None else ""
        if self.arch not in SUPPORTED_ARCHS:
            raise UserError(
                f"GGUF export supports the architectures {', '.join(sorted(SUPPORTED_ARCHS))}; "
                f"{str(path)!r} is {self.arch!r}: convert the merged folder with llama.cpp's "
                "convert_hf_to_gguf.py instead"
            )
        self.tensors = {t.name: t for t in self.reader.tensors}
        self.blocks = int(self._number("block_count"))
        self.heads = int(self._number("attention.head_count"))
        self.kv_heads = int(self._number("attention.head_count_kv", self.heads))

    def _number(self, key: str, default: float | None = None) -> float:
        field = self.reader.fields.get(f"{self.arch}.{key}")
        if field is None:
            if default is None:
                raise UserError(f"{str(self.path)!r} lacks the metadata key {self.arch}.{key}")
            return default
        return float(field.contents())

    def dequantized(self, name: str) -> np.ndarray:
        gguf = _gguf()
        tensor = self.tensors[name]
        return np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), np.float32)


def template_for(base: str) -> Path:
    """The GGUF file a base model (catalogue name or ``.gguf`` path) was loaded from."""
    from fncall.models import gguf_file

    path = gguf_file(base)
    if path is None:
        raise UserError(
            f"export.gguf needs a GGUF base model (a catalogue name or a .gguf file), not "
            f"{base!r}; convert the merged folder with llama.cpp's convert_hf_to_gguf.py instead"
        )
    return path


def gguf_tensors(state: Mapping[str, Any], template: _Template) -> dict[str, np.ndarray]:
    """Hugging Face state dict -> ``{gguf name: float32 array}`` in llama.cpp's layout.

    Raises ``UserError`` naming every tensor that has no place in the template's architecture.
    """
    gguf = _gguf()
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == template.arch)
    names = gguf.get_tensor_name_map(arch, template.blocks)
    out: dict[str, np.ndarray] = {}
    unplaced: list[str] = []
    for key, value in state.items():
        array = value.detach().to("cpu").float().numpy() if hasattr(value, "detach") else value
        target = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if target is None:
            unplaced.append(key)
            continue
        name, _, suffix = target.rpartition(".")
        suffix = "." + suffix
        if target not in template.tensors:
            if suffix == ".weight" and key == "lm_head.weight":
                continue  # tied to the token embeddings: the template has no output tensor
            if suffix == ".bias" and name + ".weight" in template.tensors:
                pass  # a bias the base lacks (BitFit): llama.cpp loads it when present
            else:
                unplaced.append(key)
                continue
        if template.arch in PERMUTED_ARCHS:
            if name.endswith(".attn_q"):
                array = _unpermute_rotary(array, template.heads)
            elif name.endswith(".attn_k"):
                array = _unpermute_rotary(array, template.kv_heads)
        out[target] = np.ascontiguousarray(array, dtype=np.float32)
    if unplaced:
        shown = ", ".join(unplaced[:8]) + (" ..." if len(unplaced) > 8 else "")
        raise UserError(
            f"{len(unplaced)} tensor(s) have no place in a {template.arch!r} GGUF: {shown} "
            "(bottleneck adapters and soft prompts cannot be exported; merge LoRA first)"
        )
    return out


def export_gguf(
    model: Any,
    base_gguf: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    outtype: str = "q8_0",
    chat_template: str | None = None,
    name: str | None = None,
) -> Path:
    """Write ``model`` (a plain transformers model, LoRA merged) as a GGUF file at ``target``.

    The file is written next to ``target`` and renamed into place, so a crash leaves no half
    file.
    """
    gguf = _gguf()
    if outtype not in GGUF_OUTTYPES:
        raise UserError(f"GGUF outtype must be one of {', '.join(GGUF_OUTTYPES)}, got {outtype!r}")
    template = _Template(Path(base_gguf).expanduser())
    tensors = gguf_tensors(model.state_dict(), template)
    path = Path(target).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    writer = gguf.GGUFWriter(str(tmp), template.arch)
    overrides: dict[str, str] = {}
    if chat_template:
        overrides["tokenizer.chat_template"] = chat_template
    if name:
        overrides["general.name"] = name
    for key, field in template.reader.fields.items():
        if key.startswith(_SKIPPED_KEYS) or key in overrides:
            continue
        value = field.contents()
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, value, field.types[0], sub_type=sub_type)
    for key, text in overrides.items():
        writer.add_key_value(key, text, gguf.GGUFValueType.STRING)
    file_types = {
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "f32": gguf.LlamaFileType.ALL_F32,
    }
    writer.add_file_type(int(file_types[outtype]))
    for tensor_name, tensor in template.tensors.items():
        if tensor_name not in tensors:  # e.g. rope_freqs: only the template has it
            writer.add_tensor(
                tensor_name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type
            )
    for tensor_name, array in tensors.items():
        _add_tensor(writer, gguf, tensor_name, array, outtype)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return path


def _add_tensor(writer: Any, gguf: Any, name: str, array: np.ndarray, outtype: str) -> None:
    if array.ndim < 2 or outtype == "f32":
        writer.add_tensor(name, array.astype(np.float32))
    elif outtype == "f16":
        writer.add_tensor(name, array.astype(np.float16))
    else:
        qtype = gguf.GGMLQuantizationType.Q8_0
        if array.shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0]:
            writer.add_tensor(name, array.astype(np.float16))  # rows not a multiple of 32
            return
        data = gguf.quants.quantize(array, qtype)
        writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qtype)
