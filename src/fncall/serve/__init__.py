"""An OpenAI-compatible server with a web playground: ``fncall serve``.

``create_app(model, model_name=...)`` builds the FastAPI app around any ``ChatModel``;
``export_training_data`` turns the optional trace database into fine-tuning JSONL. FastAPI is
imported only when ``create_app`` is used, so ``import fncall.serve`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fncall.serve.trace import TraceLog, export_training_data, read_exchanges

if TYPE_CHECKING:
    from fncall.serve.app import check_exposure, create_app

__all__ = ["TraceLog", "check_exposure", "create_app", "export_training_data", "read_exchanges"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "check_exposure"):
        from fncall.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'fncall.serve' has no attribute {name!r}")
