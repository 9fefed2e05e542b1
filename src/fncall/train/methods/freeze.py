"""Partial freezing: only the top ``layers`` transformer blocks (and the final norm) train."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from fncall.errors import UserError
from fncall.train.methods.base import MethodBase, decoder_layers, freeze_all, register_method


@dataclass
class FreezeLayers(MethodBase):
    layers: int = 2
    train_final_norm: bool = True
    name: str = "freeze"

    def apply(self, model: nn.Module) -> nn.Module:
        blocks = decoder_layers(model)
        if not 1 <= self.layers <= len(blocks):
            raise UserError(
                f"freeze: layers must be between 1 and {len(blocks)}, got {self.layers}"
            )
        freeze_all(model)
        for block in list(blocks)[-self.layers :]:
            for parameter in block.parameters():
                parameter.requires_grad_(True)
        if self.train_final_norm:
            # The norm after the last block: a named child ``norm`` of the block stack's owner.
            for name, module in model.named_modules():
                if name.endswith(".norm") or name == "norm":
                    for parameter in module.parameters():
                        parameter.requires_grad_(True)
        return model


register_method("freeze", FreezeLayers)
