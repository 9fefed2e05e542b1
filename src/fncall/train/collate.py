"""Tokenization with loss masking, and the batch collator.

The prompt is rendered by ``fncall.formats.template.render_training_example`` (the same code the
engine uses at inference), so the model is trained on exactly the prompt it will later be shown.
Prompt and target are tokenized separately and concatenated: the prompt's tokens are what the
engine feeds, and the target's tokens are what it should generate from that point. Only target
tokens carry labels; everything else is ``IGNORE_INDEX`` (-100).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from fncall.errors import UserError
from fncall.train.data import TrainingExample

IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedExample:
    input_ids: list[int]
    labels: list[int]
    index: int  # position in the dataset it came from (logged to check data order)

    @property
    def target_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def render_example(
    example: TrainingExample, tokenizer: Any, *, format: str, chat_template: str | None = None
) -> tuple[str, str]:
    """``(prompt, target)`` text for one example, with the model's own chat template."""
    from fncall.formats.template import render_training_example

    template = (
        chat_template if chat_template is not None else getattr(tokenizer, "chat_template", None)
    )
    return render_training_example(
        template,
        list(example.messages),
        list(example.tools),
        format=format,
        bos_token=getattr(tokenizer, "bos_token", None) or "",
        eos_token=getattr(tokenizer, "eos_token", None) or "",
    )


def encode_example(
    example: TrainingExample,
    tokenizer: Any,
    *,
    format: str,
    chat_template: str | None = None,
    index: int = 0,
) -> EncodedExample:
    prompt, target = render_example(example, tokenizer, format=format, chat_template=chat_template)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    if not target_ids:
        raise UserError(f"{example.source or 'example'}: the assistant turn renders to no tokens")
    return EncodedExample(
        input_ids=list(prompt_ids) + list(target_ids),
        labels=[IGNORE_INDEX] * len(prompt_ids) + list(target_ids),
        index=index,
    )


@dataclass(frozen=True)
class EncodedDataset:
    examples: list[EncodedExample]
    dropped_too_long: int

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> EncodedExample:
        return self.examples[i]

    @property
    def tokens(self) -> int:
        return sum(len(e.input_ids) for e in self.examples)


def encode_examples(
    examples: Sequence[TrainingExample],
    tokenizer: Any,
    *,
    format: str,
    max_seq_len: int,
    chat_template: str | None = None,
) -> EncodedDataset:
    """Encode every example; ones longer than ``max_seq_len`` are dropped (and counted), because
    cutting a tool list or a call would teach the model a wrong answer."""
    kept: list[EncodedExample] = []
    dropped = 0
    for i, example in enumerate(examples):
        encoded = encode_example(
            example, tokenizer, format=format, chat_template=chat_template, index=i
        )
        if len(encoded.input_ids) > max_seq_len:
            dropped += 1
            continue
        kept.append(encoded)
    return EncodedDataset(examples=kept, dropped_too_long=dropped)


@dataclass(frozen=True)
class Collator:
    """Right-pads a list of encoded examples into tensors; padding never carries a label."""

    pad_token_id: int

    def __call__(self, batch: Sequence[EncodedExample]) -> dict[str, torch.Tensor]:
        width = max(len(e.input_ids) for e in batch)
        input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, example in enumerate(batch):
            n = len(example.input_ids)
            input_ids[row, :n] = torch.tensor(example.input_ids)
            labels[row, :n] = torch.tensor(example.labels)
            attention[row, :n] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}


def pad_token_id(tokenizer: Any) -> int:
    for attr in ("pad_token_id", "eos_token_id", "unk_token_id"):
        value = getattr(tokenizer, attr, None)
        if isinstance(value, int):
            return value
    return 0
