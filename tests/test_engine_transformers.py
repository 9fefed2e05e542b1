"""The transformers engine on a tiny random Llama built here (offline), plus the GGUF road."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from fncall.engine import load_engine  # noqa: E402
from fncall.engine.base import Engine  # noqa: E402
from fncall.engine.transformers import TransformersEngine  # noqa: E402
from fncall.errors import UserError  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SPECIALS = ["<|end|>", "<|user|>", "<|assistant|>"]
PREFIX = "<|user|>You can call: " + ", ".join(f"tool_{i}(x: int)" for i in range(10)) + ". "


class SequenceMatcher:
    """A TokenMatcher allowing exactly ``tokens``."""

    def __init__(self, tokens: list[int]) -> None:
        self.tokens, self.pos = tokens, 0

    def mask_logits(self, logits: np.ndarray) -> None:
        keep = logits[self.tokens[self.pos]]
        logits[:] = -np.inf
        logits[self.tokens[self.pos]] = keep

    def advance(self, token_id: int) -> None:
        assert token_id == self.tokens[self.pos]
        self.pos += 1

    def forced_tokens(self) -> list[int]:
        return []

    def prefer_closing(self, logits: np.ndarray) -> bool:
        return False

    @property
    def is_finished(self) -> bool:
        return self.pos == len(self.tokens)


class ForceTokens:
    def __init__(self, tokens: list[int]) -> None:
        self.tokens = tokens

    def matcher(self, vocabulary: Sequence[bytes], eos_token_ids: Sequence[int]) -> SequenceMatcher:
        return SequenceMatcher(self.tokens)


def byte_level_tokenizer() -> Any:
    """A byte-level BPE tokenizer with no merges: one token per byte, plus special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokenizer = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=SPECIALS[0])
    fast.add_special_tokens({"additional_special_tokens": SPECIALS[1:]})
    fast.chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
    return fast


def tiny_llama() -> tuple[Any, Any]:
    """(model, tokenizer): a 2-layer random Llama over the byte-level tokenizer, seeded."""
    tokenizer = byte_level_tokenizer()
    config = transformers.LlamaConfig(
        vocab_size=272,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        pad_token_id=None,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval(), tokenizer


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, tokenizer = tiny_llama()
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def engine(tiny_dir: Path) -> TransformersEngine:
    return TransformersEngine(tiny_dir, device="cpu")


def reference_greedy(model: Any, tokens: list[int], n: int, eos: frozenset[int]) -> list[int]:
    """Greedy decoding with full forward passes and no KV cache."""
    ids = list(tokens)
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(n):
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            token = int(torch.argmax(logits))
            if token in eos:
                break
            out.append(token)
            ids.append(token)
    return out


def test_loads_folder_with_vocabulary_template_and_eos(engine: TransformersEngine) -> None:
    assert isinstance(engine, Engine)
    vocab = engine.vocabulary()
    assert len(vocab) == 272
    tokens = engine.tokenize("hé<|end|>")
    assert b"".join(vocab[t] for t in tokens) == "hé<|end|>".encode()
    assert engine.tokenizer.eos_token_id in engine.eos_token_ids
    assert vocab[engine.tokenizer.eos_token_id] == b"<|end|>"
    assert vocab[-1] == b""  # padded embedding rows have no text
    assert engine.chat_template and "messages" in engine.chat_template


def test_greedy_matches_an_uncached_reference(engine: TransformersEngine) -> None:
    prompt = PREFIX + "call tool_3"
    out = engine.generate(prompt, max_tokens=8)
    expected = reference_greedy(engine.model, engine.tokenize(prompt), 8, engine.eos_token_ids)
    assert out.completion_tokens == len(expected)
    assert out.text == engine.detokenize(expected)
    again = engine.generate(prompt, max_tokens=8)
    assert again.text == out.text and again.cached_tokens == again.prompt_tokens - 1


def test_shared_prefix_is_cached_and_correct(engine: TransformersEngine) -> None:
    engine.generate(PREFIX + "first question", max_tokens=3)
    prompt = PREFIX + "second one"
    warm = engine.generate(prompt, max_tokens=6)
    assert warm.cached_tokens >= len(engine.tokenize(PREFIX))
    expected = reference_greedy(engine.model, engine.tokenize(prompt), 6, engine.eos_token_ids)
    assert warm.text == engine.detokenize(expected)


def test_a_replaced_prefix_is_saved_and_loaded_back(engine: TransformersEngine) -> None:
    other = PREFIX.upper()
    engine.generate(PREFIX + "first question", max_tokens=3)
    hits = engine.prefix_cache.hits
    engine.generate(other + "unrelated", max_tokens=3)  # replaces the live cache
    prompt = PREFIX + "third one"
    warm = engine.generate(prompt, max_tokens=6)
    assert engine.prefix_cache.hits == hits + 1
    assert warm.cached_tokens >= len(engine.tokenize(PREFIX))
    expected = reference_greedy(engine.model, engine.tokenize(prompt), 6, engine.eos_token_ids)
    assert warm.text == engine.detokenize(expected)
    # and the prefix it replaced comes back the same way
    again = engine.generate(other + "unrelated again", max_tokens=3)
    assert again.cached_tokens >= len(engine.tokenize(other)) - 1


def test_constraint_streaming_and_stop(engine: TransformersEngine) -> None:
    target = '{"name": "tool_3"} ✓'
    chunks: list[str] = []
    out = engine.generate(
        PREFIX,
        max_tokens=60,
        constraint=ForceTokens(engine.tokenize(target)),
        on_text=chunks.append,
    )
    assert out.text == target and "".join(chunks) == target
    assert all("\ufffd" not in c for c in chunks)
    cut = engine.generate(
        PREFIX, max_tokens=60, stop=['"tool'], constraint=ForceTokens(engine.tokenize(target))
    )
    assert cut.text == '{"name": '


def test_lora_adapter_changes_the_model(tiny_dir: Path, tmp_path: Path) -> None:
    peft = pytest.importorskip("peft")
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    lora.save_pretrained(tmp_path / "adapter")
    engine = TransformersEngine(tiny_dir, adapter=tmp_path / "adapter", device="cpu")
    prompt = PREFIX + "go"
    expected = reference_greedy(lora.eval(), engine.tokenize(prompt), 6, engine.eos_token_ids)
    assert engine.generate(prompt, max_tokens=6).text == engine.detokenize(expected)
    ids = torch.tensor([engine.tokenize(prompt)])
    with torch.inference_mode():
        plain = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir)(input_ids=ids).logits
        adapted = engine.model(input_ids=ids).logits
    assert not torch.allclose(plain, adapted, atol=1e-3)
    with pytest.raises(UserError, match="not a PEFT adapter"):
        TransformersEngine(tiny_dir, adapter=tmp_path)


def test_soft_prompt_runs_ahead_of_every_prompt_and_stays_cached(
    tiny_dir: Path, tmp_path: Path
) -> None:
    peft = pytest.importorskip("peft")
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir)
    config = peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5)
    torch.manual_seed(2)
    tuned = peft.get_peft_model(base, config)
    with torch.no_grad():
        next(tuned.prompt_encoder.parameters()).normal_(0, 2.0)
    tuned.save_pretrained(tmp_path / "soft")
    engine = TransformersEngine(tiny_dir, adapter=tmp_path / "soft", device="cpu")

    def expected(prompt: str) -> str:  # PEFT's own generate prepends the soft prompt
        ids = torch.tensor([engine.tokenize(prompt)])
        out = tuned.eval().generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False
        )
        new = [t for t in out[0, ids.shape[1] :].tolist() if t not in engine.eos_token_ids]
        return engine.detokenize(new)

    first = engine.generate(PREFIX + "go", max_tokens=6)
    assert first.text == expected(PREFIX + "go")
    second = engine.generate(PREFIX + "stop", max_tokens=6)
    assert second.text == expected(PREFIX + "stop")
    assert second.cached_tokens >= len(engine.tokenize(PREFIX)) - 1  # soft prompt + prefix kept
    plain = TransformersEngine(tiny_dir, device="cpu").generate(PREFIX + "go", max_tokens=6)
    assert plain.text != first.text  # the soft prompt changes what the model says


def test_a_model_object_stays_on_its_device(engine: TransformersEngine, monkeypatch) -> None:
    """On a GPU machine a model object given on the CPU used to be moved to the GPU in place,
    under the engine that already held it (found by scripts/gpu_check.sh on an H200)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine
    clone = TransformersEngine(engine.model, tokenizer=engine.tokenizer, name="clone")
    assert clone.device == "cpu" and next(engine.model.parameters()).device.type == "cpu"
    assert clone.generate(PREFIX, max_tokens=4).text == engine.generate(PREFIX, max_tokens=4).text


def test_model_object_save_and_errors(engine: TransformersEngine, tmp_path: Path) -> None:
    clone = TransformersEngine(engine.model, tokenizer=engine.tokenizer, name="clone")
    assert clone.generate(PREFIX, max_tokens=4).text == engine.generate(PREFIX, max_tokens=4).text
    saved = clone.save(tmp_path / "saved")
    assert (saved / "config.json").is_file()
    assert isinstance(load_engine(saved), TransformersEngine)  # auto picks transformers
    with pytest.raises(UserError, match="tokenizer="):
        TransformersEngine(engine.model)
    with pytest.raises(UserError, match=r"no config\.json"):
        TransformersEngine(tmp_path)
    with pytest.raises(UserError, match="dtype must be one of"):
        TransformersEngine(saved, dtype="float8")


@pytest.mark.model
@pytest.mark.slow
def test_from_gguf_agrees_with_llama_cpp_tokens() -> None:
    pytest.importorskip("gguf")
    llama_cpp_engine = pytest.importorskip("fncall.engine.llama_cpp")
    from fncall.models import install_model

    path = install_model("smollm2-135m", progress=False)
    engine = TransformersEngine.from_gguf(path, device="cpu")
    reference = llama_cpp_engine.LlamaCppEngine(path, n_ctx=256)
    prompt = "<|im_start|>user\nWhat is the capital of France? Ünïcödé ✓<|im_end|>\n"
    assert engine.tokenize(prompt) == reference.tokenize(prompt)
    vocab, ref_vocab = engine.vocabulary(), reference.vocabulary()
    assert len(vocab) == len(ref_vocab) and vocab == ref_vocab
    assert engine.chat_template == reference.chat_template
    out = engine.generate(prompt + "<|im_start|>assistant\n", max_tokens=5)
    assert out.completion_tokens > 0 and out.text.strip()


def reference_logprob(model: Any, tokens: list[int], continuation: list[int]) -> float:
    """log P(continuation | tokens) from one uncached forward pass."""
    ids = torch.tensor([tokens + continuation])
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    return sum(float(logprobs[len(tokens) + i - 1, token]) for i, token in enumerate(continuation))


def test_score_matches_an_uncached_forward_pass(engine: TransformersEngine) -> None:
    prompt = PREFIX + "score me"
    choices = ["a", "tool_3", "<|end|>"]
    scores = engine.score(prompt, choices)
    tokens = engine.tokenize(prompt)
    for choice, score in zip(choices, scores, strict=True):
        expected = reference_logprob(engine.model, tokens, engine.tokenizer.encode(choice))
        assert score == pytest.approx(expected, abs=1e-4)
    # The prompt's cache is shared, and generation after scoring is unchanged.
    out = engine.generate(prompt, max_tokens=4)
    assert out.cached_tokens == out.prompt_tokens - 1
    expected_tokens = reference_greedy(engine.model, tokens, 4, engine.eos_token_ids)
    assert out.text == engine.detokenize(expected_tokens)


def test_score_rejects_bad_continuations(engine: TransformersEngine) -> None:
    for bad in ("yes", [], [""], [3]):
        with pytest.raises(UserError, match="continuations must be"):
            engine.score(PREFIX, bad)  # type: ignore[arg-type]


def test_top_p_keeps_only_the_likeliest_tokens(tiny_dir: Path) -> None:
    engine = TransformersEngine(tiny_dir, device="cpu")
    prompt = PREFIX + "go"
    greedy = engine.generate(prompt, max_tokens=8).text
    # a nucleus this small holds the likeliest token alone, whatever the temperature
    nucleus = engine.generate(prompt, max_tokens=8, temperature=1.5, top_p=1e-6, seed=3)
    assert nucleus.text == greedy
    with pytest.raises(UserError, match="top_p"):
        engine.generate(prompt, max_tokens=2, temperature=1.0, top_p=0)


def test_a_prompt_with_lone_surrogates_is_generated_from(engine: TransformersEngine) -> None:
    """Issue 20, item 10: a lone surrogate in a request's message or schema reached the
    tokenizer, which cannot encode it (a 500); it is read as U+FFFD."""
    generation = engine.generate("<|user|>go \ud800 now<|assistant|>", max_tokens=2)
    assert generation.prompt_tokens == len(engine.tokenize("<|user|>go \ufffd now<|assistant|>"))
    assert engine.score("<|user|>go \udfff", ["a\ud800"])[0] < 0
