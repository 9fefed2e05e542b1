"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from fncall.train.methods.base import MethodBase, register_method


@dataclass
class FullFineTuning(MethodBase):
    name: str = "full"

    def apply(self, model: nn.Module) -> nn.Module:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model


register_method("full", FullFineTuning)
