"""Prompt tuning through PEFT: ``num_virtual_tokens`` trainable embeddings are prepended to every
input; the model itself is frozen. With ``init_text`` the soft prompt starts as the embeddings of
that text (tiled to length), which trains faster than a random start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from fncall.train.methods.base import MethodBase, register_method


@dataclass
class PromptTuning(MethodBase):
    num_virtual_tokens: int = 20
    init_text: str | None = None
    tokenizer: Any = None  # needed only for init_text
    name: str = "prompt_tuning"
    mergeable = False  # the soft prompt is extra input, not a weight: no merged form

    def apply(self, model: nn.Module) -> nn.Module:
        from peft import PromptTuningConfig, get_peft_model

        config = PromptTuningConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=self.num_virtual_tokens,
            prompt_tuning_init="RANDOM",
        )
        peft_model = get_peft_model(model, config)  # type: ignore[arg-type]
        if self.init_text and self.tokenizer is not None:
            ids = self.tokenizer(self.init_text, add_special_tokens=False)["input_ids"]
            if ids:
                ids = (ids * (self.num_virtual_tokens // len(ids) + 1))[: self.num_virtual_tokens]
                embeddings: Any = model.get_input_embeddings()  # type: ignore[operator]
                with torch.no_grad():
                    initial = embeddings(torch.tensor(ids, device=embeddings.weight.device))
                    encoder: Any = peft_model.prompt_encoder[peft_model.active_adapter]
                    encoder.embedding.weight.copy_(initial)
        return peft_model


register_method("prompt_tuning", PromptTuning)
