"""Bottleneck adapters (Houlsby et al.): a small down-project / non-linearity / up-project
module added to the output of every attention and MLP block, with a residual connection.

The up-projection starts at zero, so the adapted model starts exactly as the base model. The
adapters are registered as children of the blocks they follow (so ``state_dict``, optimizers and
checkpoints see them) and run from forward hooks, leaving the model's own code untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fncall.errors import UserError
from fncall.train.methods.base import (
    MethodBase,
    decoder_layers,
    freeze_all,
    hidden_size,
    register_method,
)

ADAPTER_ATTRIBUTE = "fncall_adapter"


class BottleneckAdapter(nn.Module):
    def __init__(self, hidden: int, bottleneck: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, bottleneck)
        self.activation = nn.SiLU()
        self.dropout = nn.Dropout(dropout)
        self.up = nn.Linear(bottleneck, hidden)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        delta = self.up(self.dropout(self.activation(self.down(hidden_states))))
        return hidden_states + delta


def _adapter_hook(module: nn.Module, _inputs: Any, output: Any) -> Any:
    adapter = getattr(module, ADAPTER_ATTRIBUTE)
    if isinstance(output, tuple):  # attention returns (hidden_states, attention_weights, ...)
        return (adapter(output[0]), *output[1:])
    return adapter(output)


@dataclass
class Adapters(MethodBase):
    bottleneck: int = 16
    dropout: float = 0.0
    targets: list[str] = field(default_factory=lambda: ["self_attn", "mlp"])
    name: str = "adapter"
    mergeable = False  # the adapters are extra modules in the forward pass: no merged form

    def apply(self, model: nn.Module) -> nn.Module:
        freeze_all(model)
        size = hidden_size(model)
        first = next(model.parameters())
        inserted = 0
        for block in decoder_layers(model):
            for target in self.targets:
                sub = getattr(block, target, None)
                if not isinstance(sub, nn.Module):
                    continue
                adapter = BottleneckAdapter(size, self.bottleneck, self.dropout)
                sub.add_module(ADAPTER_ATTRIBUTE, adapter.to(first.device, first.dtype))
                sub.register_forward_hook(_adapter_hook)
                inserted += 1
        if not inserted:
            raise UserError(
                f"adapter: no block has a submodule named {' or '.join(self.targets)}; "
                "set method.targets to the attention/MLP attribute names of this model"
            )
        return model


register_method("adapter", Adapters)
