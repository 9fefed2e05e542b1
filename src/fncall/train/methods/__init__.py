"""Parameter-efficient fine-tuning methods, one per module, behind the ``PeftMethod`` protocol.

    method = get_method("lora", rank=16)
    model = method.apply(model)              # freezes what should not train; may wrap the model
    method.trainable_parameters(model)       # how many parameters the optimizer will update

Built-ins register through ``register_method``, the same door a user's method uses.
"""

from __future__ import annotations

from fncall.train.methods.base import (
    PeftMethod,
    count_parameters,
    get_method,
    method_names,
    register_method,
)

__all__ = ["PeftMethod", "count_parameters", "get_method", "method_names", "register_method"]
