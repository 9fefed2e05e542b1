"""Call accuracy by generation: does the model, given a validation prompt, produce the gold calls?

A case passes when the parsed calls equal the gold calls as a multiset of (name, arguments), or
when the gold answer has no call and the model makes none. Deliberately strict and simple; the
BFCL checker in ``fncall.evaluate`` is the benchmark, this is a training signal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch

from fncall.errors import FncallError
from fncall.train.data import TrainingExample


def _call_key(name: str, arguments: Any) -> str:
    return name + json.dumps(dict(arguments), sort_keys=True)


@torch.no_grad()
def call_accuracy(
    model: Any,
    tokenizer: Any,
    examples: Sequence[TrainingExample],
    *,
    format: str,
    chat_template: str | None = None,
    max_new_tokens: int = 160,
) -> float:
    from fncall.formats.registry import get_format
    from fncall.train.collate import render_example

    fmt = get_format(format)
    was_training = model.training
    model.eval()
    passed = 0
    device = next(model.parameters()).device
    for example in examples:
        prompt, _ = render_example(example, tokenizer, format=format, chat_template=chat_template)
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(
            device
        )
        output = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            use_cache=True,  # gradient checkpointing would otherwise switch the KV cache off
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        text = tokenizer.decode(output[0, ids.shape[1] :], skip_special_tokens=True)
        gold = sorted(_call_key(c.name, c.arguments) for c in example.messages[-1].tool_calls)
        try:
            got = sorted(_call_key(c.name, c.arguments) for c in fmt.parse(text).tool_calls)
        except FncallError:
            got = ["<unparseable>"]
        passed += got == gold
    if was_training:
        model.train()
    return passed / len(examples) if examples else 0.0
