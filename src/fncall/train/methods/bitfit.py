"""BitFit: only bias terms train.

Llama-family models (SmolLM2 included) have no biases in their linear layers, so BitFit would
train nothing there. Our choice: give every linear layer without a bias (except the output head)
a zero-initialised bias, which keeps the model's function unchanged at the start, and train all
biases. For Llama the result is still a standard model: ``attention_bias`` and ``mlp_bias`` in
its config switch the same biases on, so the merged export loads in plain transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from fncall.train.methods.base import MethodBase, freeze_all, register_method


@dataclass
class BitFit(MethodBase):
    add_missing_biases: bool = True
    name: str = "bitfit"

    def apply(self, model: nn.Module) -> nn.Module:
        freeze_all(model)
        getter: Any = getattr(model, "get_output_embeddings", None)
        output = getter() if callable(getter) else None
        for module in model.modules():
            if (
                self.add_missing_biases
                and isinstance(module, nn.Linear)
                and module is not output
                and module.bias is None
            ):
                weight = module.weight
                module.bias = nn.Parameter(
                    torch.zeros(module.out_features, device=weight.device, dtype=weight.dtype)
                )
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.requires_grad_(True)
        config = getattr(model, "config", None)
        if self.add_missing_biases and config is not None:
            # Record the added biases so a saved model reloads with them (Llama-style configs).
            for flag in ("attention_bias", "mlp_bias"):
                if hasattr(config, flag):
                    setattr(config, flag, True)
        return model

    def merge(self, model: nn.Module) -> nn.Module | None:
        """The model as it is, when its config can declare the added biases (so it reloads
        with them); None for an architecture whose config cannot."""
        config = getattr(model, "config", None)
        if self.add_missing_biases:
            flags = [f for f in ("attention_bias", "mlp_bias") if hasattr(config, f)]
            if len(flags) < 2:
                return None
        return model


register_method("bitfit", BitFit)
