"""The transformers engine: Hugging Face folders on disk, fine-tuned checkpoints, LoRA adapters.

It runs the same decode loop as the llama.cpp engine (``fncall.engine.decoding``), so constraints,
stop strings and streaming behave the same. The KV cache of the longest shared prompt prefix is
kept between calls (``past_key_values`` cropped to the prefix), and a prefix another prompt
replaces is saved in a bounded LRU (``fncall.engine.prefix_cache``). torch and transformers are
imported only when an engine is built, never at ``import fncall``.

A PEFT prompt-tuning adapter (a soft prompt) runs as what it is: its virtual token embeddings
are evaluated once into the KV cache ahead of every prompt, and the frozen base model continues
from there; the cache keeps them, so they cost nothing per request.

``TransformersEngine.from_gguf`` dequantizes a GGUF (an embedded model) into a float model: the
road to fine-tuning, since the result can be saved as safetensors with ``save``.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fncall.engine.base import Generation
from fncall.engine.decoding import (
    DecodeRequest,
    TextStream,
    check_continuations,
    check_options,
    check_sampling,
    make_generation,
    run_decode_loop,
    score_continuations,
)
from fncall.engine.prefix_cache import DEFAULT_CACHE_MB, PrefixCache, cache_bytes
from fncall.errors import UserError
from fncall.types import valid_unicode

if TYPE_CHECKING:
    from fncall.constrain.base import Constraint

_DTYPES = ("float32", "bfloat16", "float16", "auto")
_SOFT = -1  # the cache's id for a soft-prompt position (never a real token id)
_END_OF_TURN = frozenset(
    {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<|eom_id|>"}
)


def _import_torch() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError:
        raise UserError(
            "the transformers engine needs torch and transformers: pip install 'fncall[train]'"
        ) from None
    return torch, transformers


def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's byte-to-unicode table used by byte-level BPE vocabularies."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return {char: b for b, char in mapping.items()}


def token_bytes(tokenizer: Any, size: int) -> list[bytes]:
    """The bytes of each token id of a fast tokenizer (byte-level BPE or SentencePiece-style).

    Added/special tokens are their text. Ids past the tokenizer's end (padded embeddings) are b"".
    """
    decoder = json.dumps(json.loads(tokenizer.backend_tokenizer.to_str()).get("decoder"))
    byte_level = '"ByteLevel"' in decoder
    byte_decoder = _byte_decoder()
    added = {int(i) for i in tokenizer.added_tokens_decoder}
    count = min(size, len(tokenizer))
    pieces: list[bytes] = []
    for token_id, token in enumerate(tokenizer.convert_ids_to_tokens(list(range(count)))):
        if token is None:
            pieces.append(b"")
        elif token_id in added:
            pieces.append(token.encode("utf-8"))
        elif byte_level:
            if all(c in byte_decoder for c in token):
                pieces.append(bytes(byte_decoder[c] for c in token))
            else:
                pieces.append(token.encode("utf-8"))
        elif len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            pieces.append(bytes([int(token[3:5], 16)]))  # SentencePiece byte fallback
        else:
            pieces.append(token.replace("▁", " ").encode("utf-8"))
    pieces.extend(b"" for _ in range(size - count))
    return pieces


def default_device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    torch, _ = _import_torch()
    return "cuda" if torch.cuda.is_available() else "cpu"


def _cache_nbytes(past: Any) -> int:
    """The bytes a ``DynamicCache``'s key and value tensors take."""
    total = 0
    for layer in getattr(past, "layers", None) or ():
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if tensor is not None and hasattr(tensor, "element_size"):
                total += tensor.element_size() * tensor.nelement()
    return total


class TransformersEngine:
    """A causal LM through transformers (optionally with a PEFT adapter); an ``Engine``.

    ``device`` defaults to the GPU when torch sees one, else the CPU; a model object passed in
    stays on its own device unless ``device`` is given (then it is moved, in place).
    """

    def __init__(
        self,
        path_or_model: str | os.PathLike[str] | Any,
        *,
        adapter: str | os.PathLike[str] | None = None,
        tokenizer: Any = None,
        device: str | None = None,
        dtype: str | Any = "float32",
        seed: int = 0,
        name: str | None = None,
        prefix_cache_mb: float = DEFAULT_CACHE_MB,
    ) -> None:
        self.prefix_cache = PrefixCache(cache_bytes(prefix_cache_mb))
        torch, transformers = _import_torch()
        self._torch = torch
        if isinstance(path_or_model, str | os.PathLike):
            path = Path(path_or_model).expanduser()
            if not (path / "config.json").is_file():
                raise UserError(
                    f"{str(path)!r} is not a Hugging Face model folder (no config.json); for a "
                    ".gguf file use TransformersEngine.from_gguf"
                )
            model = transformers.AutoModelForCausalLM.from_pretrained(
                path, dtype=self._dtype(dtype), local_files_only=True
            )
            tokenizer = tokenizer or transformers.AutoTokenizer.from_pretrained(
                path, local_files_only=True
            )
            self.name = name or path.name
        else:
            model = path_or_model
            if tokenizer is None:
                raise UserError("pass tokenizer= when giving TransformersEngine a model object")
            self.name = name or str(getattr(model.config, "name_or_path", "") or "model")
            # A model object stays where it is unless device= says otherwise: moving it would
            # move the caller's model under any other engine or code that holds it.
            device = device or str(next(model.parameters()).device)
        self.device = device or default_device()
        if adapter is not None:
            model = self._load_adapter(model, Path(adapter).expanduser())
        self.model, self._soft_prompt = self._split_soft_prompt(model.to(self.device).eval())
        self.tokenizer = tokenizer
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
        self._pieces: list[bytes] | None = None
        self.eos_token_ids = self._find_eos_ids()
        self._cache_ids: list[int] = []
        self._past: Any = None

    @classmethod
    def from_gguf(cls, gguf_path: str | os.PathLike[str], **options: Any) -> TransformersEngine:
        """Dequantize a GGUF file into a float32 model (0.5B: about 50 s and 4 GB of memory)."""
        torch, transformers = _import_torch()
        path = Path(gguf_path).expanduser()
        if not path.is_file():
            raise UserError(f"GGUF model file {str(path)!r} does not exist")
        model = transformers.AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32, local_files_only=True
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            path.parent, gguf_file=path.name, local_files_only=True
        )
        # The dequantized weights are plain floats: without this, save_pretrained refuses.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        options.setdefault("name", path.stem)
        options.setdefault("device", default_device())  # loaded on the CPU: pick the device here
        return cls(model, tokenizer=tokenizer, **options)

    def _dtype(self, dtype: Any) -> Any:
        if not isinstance(dtype, str):
            return dtype
        if dtype not in _DTYPES:
            raise UserError(
                f"dtype must be one of {', '.join(_DTYPES)} or a torch.dtype, got {dtype!r}"
            )
        return dtype if dtype == "auto" else getattr(self._torch, dtype)

    @staticmethod
    def _load_adapter(model: Any, adapter: Path) -> Any:
        if not (adapter / "adapter_config.json").is_file():
            raise UserError(
                f"{str(adapter)!r} is not a PEFT adapter folder (no adapter_config.json)"
            )
        try:
            from peft import PeftModel
        except ImportError:
            raise UserError("loading an adapter needs peft: pip install 'fncall[train]'") from None
        return PeftModel.from_pretrained(model, str(adapter))

    def _split_soft_prompt(self, model: Any) -> tuple[Any, Any]:
        """``(base model, soft prompt embeddings [1, n, hidden])`` for a PEFT prompt-tuning
        model; ``(model, None)`` for anything else."""
        configs = getattr(model, "peft_config", None)
        if not configs:
            return model, None
        config = configs[model.active_adapter]
        if not getattr(config, "is_prompt_learning", False):
            return model, None
        if str(getattr(config.peft_type, "value", config.peft_type)) != "PROMPT_TUNING":
            raise UserError(
                f"the transformers engine runs prompt tuning among the prompt-learning methods, "
                f"not {config.peft_type}"
            )
        with self._torch.no_grad():
            prompt = model.get_prompt(batch_size=1).to(self.device)
        return model.get_base_model(), prompt

    def _find_eos_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        config = getattr(self.model, "generation_config", None)
        for value in (getattr(config, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, list | tuple):
                ids.update(int(v) for v in value)
        # End-of-turn tokens that llama.cpp also treats as end of generation.
        for token_id, token in self.tokenizer.added_tokens_decoder.items():
            if getattr(token, "content", str(token)) in _END_OF_TURN:
                ids.add(int(token_id))
        return frozenset(ids)

    # -- tokens ------------------------------------------------------------------------------

    @property
    def chat_template(self) -> str | None:
        template = getattr(self.tokenizer, "chat_template", None)
        return template if isinstance(template, str) and template else None

    def vocabulary(self) -> list[bytes]:
        """The bytes of every token id (as many as the model has logits), specials as text."""
        if self._pieces is None:
            self._pieces = token_bytes(self.tokenizer, self._vocab_size)
        return self._pieces

    def tokenize(self, text: str) -> list[int]:
        # A lone surrogate (a request's "\ud800") is a TypeError in the tokenizer: U+FFFD.
        tokens = list(self.tokenizer.encode(valid_unicode(text), add_special_tokens=False))
        bos = self.tokenizer.bos_token_id
        adds_bos = getattr(self.tokenizer, "add_bos_token", False) and bos is not None
        if adds_bos and (not tokens or tokens[0] != bos):
            tokens.insert(0, bos)
        return tokens

    def detokenize(self, tokens: Sequence[int]) -> str:
        pieces = self.vocabulary()
        return b"".join(pieces[t] for t in tokens).decode("utf-8", errors="replace")

    # -- generation --------------------------------------------------------------------------

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the cache of the longest prefix ``tokens`` shares with the live cache or a saved
        one (``fncall.engine.prefix_cache``); returns how many tokens it covers."""
        plan = self.prefix_cache.plan(np.asarray(self._cache_ids, dtype=np.int64), tokens)
        common = plan.live
        if self._croppable():  # only such a cache is saved, and cut back after a load
            if plan.save_live:
                state = copy.deepcopy(self._past)
                self.prefix_cache.put(self._cache_ids, state, _cache_nbytes(state))
            if plan.load is not None:
                self._past = copy.deepcopy(plan.load.state)  # the saved one stays as it was
                self._cache_ids = plan.load.tokens.tolist()
                self.prefix_cache.hits += 1
                common = plan.shared
        if common == len(tokens):
            common -= 1  # evaluate the last prompt token again to get its logits
        if self._soft_prompt is not None and common < self._soft_prompt.shape[1]:
            common = 0  # the soft prompt is cached whole or not at all
        if common > 0 and self._croppable():
            remove = len(self._cache_ids) - common
            if remove > 0:
                self._past.crop(-remove)  # transformers 5: a negative count of tokens to drop
        else:
            common, self._past = 0, None
        self._cache_ids = self._cache_ids[:common]
        return common

    def _croppable(self) -> bool:
        """Only full-attention caches can be cut back to a prefix (not sliding or recurrent)."""
        from transformers.cache_utils import DynamicLayer

        layers = getattr(self._past, "layers", None) or ()
        # Exactly DynamicLayer: its sliding-window subclass cannot be cut back.
        return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)

    def _evaluate(self, tokens: list[int]) -> None:
        torch = self._torch
        soft = self._soft_prompt is not None and tokens[0] == _SOFT
        ids = tokens[self._soft_prompt.shape[1] :] if soft else tokens
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            if soft:  # an empty cache: the soft prompt goes first, as embeddings
                embeddings = self.model.get_input_embeddings()(input_ids)
                inputs = torch.cat([self._soft_prompt.to(embeddings.dtype), embeddings], dim=1)
                out = self.model(inputs_embeds=inputs, past_key_values=self._past, use_cache=True)
            else:
                out = self.model(input_ids=input_ids, past_key_values=self._past, use_cache=True)
        self._past = out.past_key_values
        self._cache_ids.extend(tokens)
        self._last_logits = out.logits[0, -1].float().cpu().numpy()

    def _logits(self) -> np.ndarray:
        return self._last_logits

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        seed: int | None = None,
        constraint: Constraint | None = None,
        on_text: Callable[[str], None] | None = None,
        top_p: float = 1.0,
        min_p: float = 0.0,
        logit_bias: Mapping[int, float] | None = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        top_logprobs: int | None = None,
    ) -> Generation:
        """Generate a completion of ``prompt``; semantics as in ``LlamaCppEngine.generate``."""
        stops = check_options(max_tokens, temperature, stop, top_p=top_p, min_p=min_p)
        pieces = self.vocabulary()
        sampling = check_sampling(
            vocab_size=len(pieces),
            logit_bias=logit_bias,
            presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty,
            top_logprobs=top_logprobs,
        )
        with self._lock:
            started = time.perf_counter()
            tokens = self.tokenize(prompt)
            if not tokens:
                raise UserError("the prompt is empty: it tokenizes to no tokens")
            matcher = (
                constraint.matcher(pieces, sorted(self.eos_token_ids))
                if constraint is not None
                else None
            )
            soft = [] if self._soft_prompt is None else [_SOFT] * self._soft_prompt.shape[1]
            sequence = soft + tokens
            try:
                cached = self._reuse_prefix(sequence)
                request = DecodeRequest(
                    pending=sequence[cached:],
                    max_tokens=max_tokens,
                    temperature=float(temperature),
                    top_p=float(top_p),
                    min_p=float(min_p),
                    rng=np.random.default_rng(seed) if seed is not None else self._rng,
                    stream=TextStream(stops, on_text),
                    pieces=pieces,
                    eog=self.eos_token_ids,
                    matcher=matcher,
                    **sampling,
                )
                generated, finish = run_decode_loop(request, self._evaluate, self._logits)
            except BaseException:
                self._cache_ids, self._past = [], None  # the cache may be half-updated
                raise
            return make_generation(
                request,
                generated=generated,
                finish_reason=finish,
                prompt_tokens=len(tokens),
                cached_tokens=max(0, cached - len(soft)),
                started=started,
            )

    def score(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """The log-probability of each text in ``continuations`` following ``prompt``; as in
        ``LlamaCppEngine.score``."""
        with self._lock:
            tokens = self.tokenize(prompt)
            if not tokens:
                raise UserError("the prompt is empty: it tokenizes to no tokens")
            pieces = [
                list(self.tokenizer.encode(valid_unicode(text), add_special_tokens=False))
                for text in check_continuations(continuations)
            ]
            soft = [] if self._soft_prompt is None else [_SOFT] * self._soft_prompt.shape[1]
            try:
                return score_continuations(
                    soft + tokens, pieces, self._reuse_prefix, self._evaluate, self._logits
                )
            except BaseException:
                self._cache_ids, self._past = [], None  # the cache may be half-updated
                raise

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Save as a Hugging Face folder: the model as safetensors (with an adapter loaded, the
        adapter alone, in PEFT's format) and the tokenizer."""
        target = Path(directory).expanduser()
        self.model.save_pretrained(target)
        self.tokenizer.save_pretrained(target)
        return target

    def __repr__(self) -> str:
        return f"TransformersEngine({self.name!r}, device={self.device!r})"
