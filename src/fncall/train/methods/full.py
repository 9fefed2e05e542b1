"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from fncall.train.methods.base import count_parameters, register_method


@dataclass
class FullFineTuning:
    name: str = "full"

    def apply(self, model: nn.Module) -> nn.Module:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model

    def trainable_parameters(self, model: nn.Module) -> int:
        return count_parameters(model)


register_method("full", FullFineTuning)
