"""Fine-tuning for function calling: data, loss masking, PEFT methods, the loop, recipes.

Importing this package is cheap; torch, transformers and peft load only when a training
function runs. The pieces, from the bottom up:

* ``data``: ``TrainingExample``, ``load_examples`` (OpenAI JSONL, ShareGPT/Hermes, BFCL),
  ``save_examples``, ``split_examples``
* ``generate`` / ``library``: ``generate_examples`` from a function library (built-in: 44 tools),
  with function masking and irrelevance cases; ``contamination``: the BFCL guard
* ``collate``: prompt/target tokenization with labels only on the assistant turn
* ``methods``: ``get_method("full"|"lora"|"adapter"|"prompt_tuning"|"bitfit"|"freeze")``
* ``config`` / ``loop`` / ``checkpoint`` / ``plots``: ``RunConfig``, ``Trainer``, atomic resume
* ``run``: ``run_training(config)``, the recipe; ``export``: adapter, merged model, model card
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "TrainingExample": "fncall.train.data",
    "load_examples": "fncall.train.data",
    "save_examples": "fncall.train.data",
    "split_examples": "fncall.train.data",
    "generate_examples": "fncall.train.generate",
    "RunConfig": "fncall.train.config",
    "load_config": "fncall.train.config",
    "config_from_dict": "fncall.train.config",
    "run_training": "fncall.train.run",
    "get_method": "fncall.train.methods",
    "load_finetuned": "fncall.train.export",
    "bfcl_guard": "fncall.train.contamination",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fncall.train' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
