"""LoRA through PEFT: low-rank updates on the chosen linear layers (default: all of them except
the output head, as in Hammer's recipe)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from fncall.train.methods.base import MethodBase, register_method


@dataclass
class LoRA(MethodBase):
    rank: int = 32
    alpha: float = 64.0
    dropout: float = 0.05
    target_modules: list[str] | str = field(default="all-linear")
    name: str = "lora"

    def apply(self, model: nn.Module) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,  # type: ignore[arg-type]  # PEFT annotates int; floats work
            lora_dropout=self.dropout,
            target_modules=self.target_modules,
            task_type="CAUSAL_LM",
            bias="none",
        )
        return get_peft_model(model, config)  # type: ignore[arg-type]

    def merge(self, model: nn.Module) -> nn.Module | None:
        """The low-rank updates folded into the weights: a plain model again."""
        from peft import PeftModel

        return model.merge_and_unload() if isinstance(model, PeftModel) else model


register_method("lora", LoRA)
