"""The ``PeftMethod`` protocol, the registry, and parameter counting shared by every method.

A method says itself whether it has a merged form (``mergeable``) and how to produce it
(``merge``): config validation and export ask the method, never its name, so a method
registered from user code goes through the same path. ``MethodBase`` holds the defaults.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from fncall.errors import UserError

_BUILTINS = ("full", "lora", "adapter", "prompt_tuning", "bitfit", "freeze")


@runtime_checkable
class PeftMethod(Protocol):
    """A way of choosing (or adding) the parameters that train."""

    name: str
    mergeable: bool  # whether a trained model has a plain, merged form (``merge``)

    def apply(self, model: nn.Module) -> nn.Module:
        """Freeze, wrap or extend ``model``; return the model to train (possibly a new wrapper)."""
        ...

    def trainable_parameters(self, model: nn.Module) -> int:
        """How many parameters of the applied model require gradients."""
        ...

    def merge(self, model: nn.Module) -> nn.Module | None:
        """The trained ``model`` as one plain model (what export writes as ``merged/`` and
        GGUF), or None when this model has no merged form."""
        ...


class MethodBase:
    """Defaults for a ``PeftMethod``: every parameter that requires gradients is trainable; the
    method is mergeable and the trained model, as it is, is its merged form (methods that only
    choose which weights train). A method that changes the computation itself (an added module,
    a soft prompt) sets ``mergeable = False``; one that wraps the model overrides ``merge``."""

    mergeable: bool = True

    def trainable_parameters(self, model: nn.Module) -> int:
        return count_parameters(model)

    def merge(self, model: nn.Module) -> nn.Module | None:
        return model if self.mergeable else None


_METHODS: dict[str, Callable[..., PeftMethod]] = {}


def register_method(name: str, factory: Callable[..., PeftMethod]) -> Callable[..., PeftMethod]:
    """Make ``get_method(name, **options)`` build ``factory(**options)``."""
    _METHODS[name] = factory
    return factory


def _load_builtins() -> None:
    for name in _BUILTINS:
        if name not in _METHODS:
            importlib.import_module(f"fncall.train.methods.{name}")


def method_names() -> list[str]:
    _load_builtins()
    return sorted(_METHODS)


def get_method(name: str, **options: Any) -> PeftMethod:
    """Build a registered method. Options a method does not take are ignored, so one config
    section can hold the options of every method."""
    _load_builtins()
    factory = _METHODS.get(name)
    if factory is None:
        raise UserError(
            f"unknown fine-tuning method {name!r}; accepted: {', '.join(method_names())}"
        )
    if dataclasses.is_dataclass(factory):
        accepted = {f.name for f in dataclasses.fields(factory) if f.init}
        options = {k: v for k, v in options.items() if k in accepted}
    return factory(**options)


def count_parameters(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Parameters counted once each (tied embeddings share storage)."""
    seen: set[int] = set()
    total = 0
    for parameter in model.parameters():
        if trainable_only and not parameter.requires_grad:
            continue
        key = id(parameter)
        if key not in seen:
            seen.add(key)
            total += parameter.numel()
    return total


def freeze_all(model: nn.Module) -> None:
    for parameter in model.parameters():
        parameter.requires_grad_(False)


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks (the longest ``ModuleList`` in the model)."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise UserError(f"cannot find the transformer layers of {type(model).__name__}")
    return max(lists, key=len)


def hidden_size(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    size = getattr(config, "hidden_size", None)
    if isinstance(size, int):
        return size
    getter: Any = getattr(model, "get_input_embeddings", None)
    embeddings = getter() if callable(getter) else None
    if isinstance(embeddings, nn.Embedding):
        return int(embeddings.embedding_dim)
    raise UserError(f"cannot tell the hidden size of {type(model).__name__}")


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the parameters that train (what checkpoints and adapters need to store)."""
    return {
        name: parameter.detach().cpu().clone()
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
    }
