"""A tiny, randomly initialised Llama and a byte-level BPE tokenizer, built offline in a second.

Used by the tests, the benchmark's smoke mode and ``model.base: tiny`` in a config, so the whole
training path (data, masking, methods, loop, checkpoints, export) runs without any download.
The tokenizer is trained on generated function-calling text, so prompts tokenize to a few
hundred tokens, not thousands of bytes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fncall.formats.template import CHATML_TEMPLATE

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"]


def _corpus() -> list[str]:
    from fncall.train.collate import render_example
    from fncall.train.generate import generate_examples

    class _Plain:  # render_example only reads these attributes
        chat_template = CHATML_TEMPLATE
        bos_token = ""
        eos_token = "<|im_end|>"

    texts = []
    for example in generate_examples(100, seed=1234):
        prompt, target = render_example(example, _Plain(), format="hermes")
        texts.append(prompt + target)
    return texts


@lru_cache(maxsize=2)
def _tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    return str(tokenizer.to_str())


def tiny_tokenizer(vocab_size: int = 1024) -> Any:
    """A ``PreTrainedTokenizerFast`` with a ChatML template (``<|im_end|>`` ends a turn)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(vocab_size)),
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def tiny_model(tokenizer: Any, *, seed: int = 0, hidden_size: int = 32, layers: int = 2) -> Any:
    """A ``LlamaForCausalLM`` with random weights (deterministic for ``seed``)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        initializer_range=0.2,  # larger than usual so a random model reacts to soft prompts
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return model


def tiny_model_and_tokenizer(*, seed: int = 0, **options: Any) -> tuple[Any, Any]:
    tokenizer = tiny_tokenizer()
    return tiny_model(tokenizer, seed=seed, **options), tokenizer
