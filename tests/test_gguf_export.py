"""GGUF export of fine-tuned models, checked against the base GGUF and against transformers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")

from fncall.errors import UserError  # noqa: E402
from fncall.train.gguf_export import _Template, export_gguf, gguf_tensors  # noqa: E402

pytestmark = [pytest.mark.model, pytest.mark.slow]
PROMPT = "<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def base() -> tuple[Path, Any, Any]:
    from fncall.models import install_model
    from fncall.train.base_model import load_base_model

    path = install_model("smollm2-135m", progress=False)
    model, tokenizer = load_base_model("smollm2-135m")
    return path, model, tokenizer


def test_untouched_model_maps_back_onto_the_template_exactly(base: tuple[Path, Any, Any]) -> None:
    path, model, _ = base
    template = _Template(path)
    tensors = gguf_tensors(model.state_dict(), template)
    assert set(tensors) == set(template.tensors)
    # the rotary permutation of attn_q / attn_k is the inverse of what transformers undid
    for name, array in tensors.items():
        np.testing.assert_array_equal(array, template.dequantized(name), err_msg=name)


def test_bitfit_biases_survive_export_and_llama_cpp_matches_transformers(
    base: tuple[Path, Any, Any], tmp_path: Path
) -> None:
    import copy

    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.engine.transformers import TransformersEngine
    from fncall.train.methods import get_method

    path, model, tokenizer = base
    before = TransformersEngine(model, tokenizer=tokenizer).generate(PROMPT, max_tokens=12).text
    tuned = get_method("bitfit").apply(copy.deepcopy(model))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # stand in for training: biases the base model does not have
        for name, parameter in tuned.named_parameters():
            if name.endswith("bias"):
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
    expected = TransformersEngine(tuned, tokenizer=tokenizer).generate(PROMPT, max_tokens=12).text
    assert expected != before  # the biases matter, so a dropped bias would show

    exported = export_gguf(tuned, path, tmp_path / "tuned.gguf", outtype="f32", name="tuned")
    assert not list(tmp_path.glob("*.partial"))
    engine = LlamaCppEngine(exported, n_ctx=256)
    assert engine.generate(PROMPT, max_tokens=12).text == expected
    assert engine.chat_template == LlamaCppEngine(path, n_ctx=256).chat_template


def test_quantized_export_is_smaller_and_still_answers(
    base: tuple[Path, Any, Any], tmp_path: Path
) -> None:
    from fncall.engine.llama_cpp import LlamaCppEngine

    path, model, _ = base
    q8 = export_gguf(model, path, tmp_path / "q8.gguf")
    f16 = export_gguf(model, path, tmp_path / "f16.gguf", outtype="f16")
    assert q8.stat().st_size < 0.6 * f16.stat().st_size
    reference = LlamaCppEngine(path, n_ctx=256).generate(PROMPT, max_tokens=8).text
    assert LlamaCppEngine(q8, n_ctx=256).generate(PROMPT, max_tokens=8).text == reference


def test_unexportable_models_and_options_are_refused(
    base: tuple[Path, Any, Any], tmp_path: Path
) -> None:
    import copy

    from fncall.train.methods import get_method

    path, model, _ = base
    with pytest.raises(UserError, match="outtype must be one of q8_0, f16, f32, got 'q3'"):
        export_gguf(model, path, tmp_path / "x.gguf", outtype="q3")
    adapted = get_method("adapter").apply(copy.deepcopy(model))
    with pytest.raises(UserError, match="have no place in a 'llama' GGUF"):
        export_gguf(adapted, path, tmp_path / "x.gguf")
    with pytest.raises(UserError, match="does not exist"):
        export_gguf(model, tmp_path / "missing.gguf", tmp_path / "x.gguf")
    assert not list(tmp_path.iterdir())
