"""Engines: a model loaded once, generating text under an optional constraint.

``load_engine`` turns a catalogue name, a ``.gguf`` file or a Hugging Face folder into an engine.
Backends are registered in ``BACKENDS`` through ``register_backend``, the same door a plugin
uses. The engine classes load lazily, so importing this package imports no llama.cpp or torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fncall.engine.base import ChatDelta, ChatModel, Engine, Generation
from fncall.errors import UserError
from fncall.models import ADAPTER_MANIFEST

if TYPE_CHECKING:
    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.engine.transformers import TransformersEngine

# backend name -> factory(model file or folder, catalogue name or None, **options) -> Engine
BackendFactory = Callable[..., Engine]
BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``load_engine(..., backend=name)`` build engines with ``factory``."""
    BACKENDS[name] = factory


def _llama_backend(path: Path, model_name: str | None, **options: Any) -> Engine:
    from fncall.engine.llama_cpp import LlamaCppEngine

    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) != 1:
            raise UserError(
                f"the llama backend needs a .gguf file; {str(path)!r} is a folder with "
                f"{len(ggufs)} .gguf files (use backend='transformers' for a Hugging Face folder)"
            )
        path = ggufs[0]
    options.setdefault("name", model_name or path.stem)
    return LlamaCppEngine(path, **options)


def _transformers_backend(path: Path, model_name: str | None, **options: Any) -> Engine:
    from fncall.engine.transformers import TransformersEngine, default_device

    options.setdefault("name", model_name or path.stem)
    if path.is_file():
        return TransformersEngine.from_gguf(path, **options)
    if (path / ADAPTER_MANIFEST).is_file():  # a training run's adapter/ folder
        # The folder's format and the PEFT methods that rebuild it belong to training, which
        # sits below the engines (see tests/test_layers.py); imported here because it needs torch.
        from fncall.train.export import load_finetuned

        model, tokenizer = load_finetuned(path)  # on the CPU: the engine picks the device
        options.setdefault("device", default_device())
        return TransformersEngine(model, tokenizer=tokenizer, **options)
    return TransformersEngine(path, **options)


register_backend("llama", _llama_backend)
register_backend("transformers", _transformers_backend)


def load_engine(
    name_or_path: str | os.PathLike[str], *, backend: str = "auto", **options: Any
) -> Engine:
    """Load an engine for a catalogue model name, a ``.gguf`` file, a Hugging Face folder, or a
    training run's ``adapter/`` folder (any method, soft prompts included).

    A catalogue model that is not assembled yet is installed first. ``backend="auto"`` picks
    ``transformers`` for a Hugging Face folder and ``llama`` otherwise. ``options`` go to the
    engine's constructor (``n_ctx``, ``n_threads``, ``seed``, ``adapter``, ``device``, ...).
    """
    from fncall.models import TRANSFORMERS_FOLDER_FILES, ModelSpec, install_model, resolve_model

    if backend != "auto" and backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; accepted: auto, {', '.join(BACKENDS)}")
    resolved = resolve_model(name_or_path)
    model_name = resolved.name if isinstance(resolved, ModelSpec) else None
    path = install_model(resolved) if isinstance(resolved, ModelSpec) else resolved
    if backend == "auto":
        folder_files = TRANSFORMERS_FOLDER_FILES
        backend = "transformers" if any((path / f).is_file() for f in folder_files) else "llama"
    return BACKENDS[backend](path, model_name, **options)


def __getattr__(name: str) -> Any:
    if name == "LlamaCppEngine":
        from fncall.engine.llama_cpp import LlamaCppEngine

        return LlamaCppEngine
    if name == "TransformersEngine":
        from fncall.engine.transformers import TransformersEngine

        return TransformersEngine
    raise AttributeError(f"module 'fncall.engine' has no attribute {name!r}")


__all__ = [
    "BACKENDS",
    "ChatDelta",
    "ChatModel",
    "Engine",
    "Generation",
    "LlamaCppEngine",
    "TransformersEngine",
    "load_engine",
    "register_backend",
]
