"""``POST /v1/embeddings``: sentence vectors from the packaged MiniLM model (``fncall.embed``).

Applications that retrieve (FAQ search, tool retrieval in front of the server) embed text
through the same server and key as their chat. The request mirrors OpenAI's: ``input`` is a
string or a list of strings; ``encoding_format`` ``float`` (lists of numbers) or ``base64``
(little-endian float32, which the official Python client asks for by default); ``dimensions``
only as the model's own (384). Token arrays are refused: they would be another tokenizer's ids.
Texts longer than the model's 256 tokens are truncated, as sentence-transformers does; the
``usage`` counts the tokens actually embedded. The model loads on the first request.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fncall.embed import DEFAULT_EMBEDDING_MODEL, Embedder, default_embedder
from fncall.errors import UserError
from fncall.serve.errors import APIError

MAX_INPUTS = 2048  # OpenAI's own limit per request


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = Field(default=None, max_length=256)


def texts_of(body: EmbeddingRequest) -> list[str]:
    """The request's texts, or an ``APIError`` naming what is wrong with ``input``."""
    if body.model != DEFAULT_EMBEDDING_MODEL:
        raise APIError(
            404,
            f"The embedding model {body.model!r} does not exist; this server embeds with "
            f"{DEFAULT_EMBEDDING_MODEL!r}",
            param="model",
            code="model_not_found",
        )
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts:
        raise APIError(400, "'input' is an empty list; send at least one string", param="input")
    if len(texts) > MAX_INPUTS:
        raise APIError(
            400, f"'input' has {len(texts)} items; at most {MAX_INPUTS} per request", param="input"
        )
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise APIError(
                400,
                "token arrays are not supported by this model (they would be another "
                "tokenizer's ids); send the text as strings",
                param="input" if isinstance(body.input[0], int) else f"input[{index}]",
            )
        if not text.strip():
            raise APIError(
                400, f"'input[{index}]' is empty; every input must contain text", param="input"
            )
    return [str(text) for text in texts]


def load_embedder() -> Embedder:
    try:
        return default_embedder()
    except UserError as exc:
        raise APIError(501, f"embeddings are not available on this server: {exc}") from None


def embedding_body(body: EmbeddingRequest, texts: list[str], embedder: Embedder) -> dict[str, Any]:
    if body.dimensions is not None and body.dimensions != embedder.dim:
        raise APIError(
            400,
            f"'dimensions' {body.dimensions} is not supported by {embedder.name}; accepted: "
            f"{embedder.dim} (or leave it out)",
            param="dimensions",
        )
    vectors = embedder.encode(texts)
    tokens = sum(embedder.token_counts(texts))
    data = [
        {"object": "embedding", "index": index, "embedding": _encoded(vector, body.encoding_format)}
        for index, vector in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": embedder.name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _encoded(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]
