"""Loss masking, PEFT methods (parameter counts, identity at start, loss goes down), config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from fncall.errors import ConfigError, UserError
from fncall.train.collate import IGNORE_INDEX, Collator, encode_examples, render_example
from fncall.train.config import config_from_dict, load_config
from fncall.train.generate import generate_examples
from fncall.train.methods import count_parameters, get_method, method_names
from fncall.train.methods.base import MethodBase
from fncall.train.tiny import tiny_model, tiny_tokenizer

HIDDEN, LAYERS = 32, 2


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def dataset(tokenizer: Any) -> Any:
    examples = generate_examples(6, seed=5, max_distractors=0)
    return examples, encode_examples(examples, tokenizer, format="hermes", max_seq_len=4096)


def test_labels_decode_exactly_to_the_target(tokenizer: Any, dataset: Any) -> None:
    examples, encoded = dataset
    assert len(encoded) == len(examples)
    for example, item in zip(examples, encoded.examples, strict=True):
        prompt, target = render_example(example, tokenizer, format="hermes")
        labelled = [t for t in item.labels if t != IGNORE_INDEX]
        assert tokenizer.decode(labelled) == target
        assert target.endswith("<|im_end|>")
        first = item.labels.index(labelled[0])
        assert tokenizer.decode(item.input_ids[:first]) == prompt  # the prompt carries no label
        assert all(label == IGNORE_INDEX for label in item.labels[:first])


def test_collator_pads_without_labels(dataset: Any) -> None:
    _, encoded = dataset
    batch = Collator(pad_token_id=0)(encoded.examples[:3])
    lengths = [len(e.input_ids) for e in encoded.examples[:3]]
    assert batch["input_ids"].shape == (3, max(lengths))
    for row, n in enumerate(lengths):
        assert batch["attention_mask"][row].sum() == n
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()


def test_too_long_examples_are_dropped_and_counted(tokenizer: Any) -> None:
    examples = generate_examples(4, seed=5)
    encoded = encode_examples(examples, tokenizer, format="hermes", max_seq_len=32)
    assert len(encoded) == 0 and encoded.dropped_too_long == 4


def _model(tokenizer: Any) -> Any:
    return tiny_model(tokenizer, seed=0, hidden_size=HIDDEN, layers=LAYERS)


def _expected_counts(tokenizer: Any) -> dict[str, int]:
    model = _model(tokenizer)
    total = count_parameters(model)
    linear = [
        m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in n
    ]
    layer_params = sum(p.numel() for p in model.model.layers[-1].parameters())
    lora_rank = 4
    return {
        "full": total,
        "lora": sum(lora_rank * (m.in_features + m.out_features) for m in linear),
        "adapter": LAYERS * 2 * (HIDDEN * 8 + 8 + 8 * HIDDEN + HIDDEN),
        "prompt_tuning": 5 * HIDDEN,
        "bitfit": sum(m.out_features for m in linear),
        "freeze": layer_params + HIDDEN,  # top layer + final norm
    }


OPTIONS = {
    "rank": 4,
    "alpha": 8.0,
    "dropout": 0.0,
    "bottleneck": 8,
    "num_virtual_tokens": 5,
    "layers": 1,
}


@pytest.mark.parametrize("name", ["full", "lora", "adapter", "prompt_tuning", "bitfit", "freeze"])
def test_trainable_parameter_counts(tokenizer: Any, name: str) -> None:
    method = get_method(name, **OPTIONS)
    model = method.apply(_model(tokenizer))
    assert method.trainable_parameters(model) == _expected_counts(tokenizer)[name]


@pytest.mark.parametrize("name", ["adapter", "bitfit", "lora"])
def test_added_parameters_start_as_identity(tokenizer: Any, dataset: Any, name: str) -> None:
    _, encoded = dataset
    batch = Collator(pad_token_id=0)(encoded.examples[:2])
    base = _model(tokenizer)
    expected = base(**batch).logits
    adapted = get_method(name, **OPTIONS).apply(_model(tokenizer))
    torch.testing.assert_close(adapted(**batch).logits, expected)


LEARNING_RATES = {
    "full": 3e-3,
    "lora": 1e-2,
    "adapter": 1e-2,
    "prompt_tuning": 1e-1,
    "bitfit": 2e-2,
    "freeze": 5e-3,
}


@pytest.mark.parametrize("name", sorted(LEARNING_RATES))
def test_short_fine_tune_lowers_the_loss(
    tokenizer: Any, dataset: Any, tmp_path: Path, name: str
) -> None:
    from fncall.train.loop import Trainer

    _, encoded = dataset
    shortest = sorted(encoded.examples, key=lambda e: len(e.input_ids))[:2]
    train = type(encoded)(examples=shortest, dropped_too_long=0)
    config = config_from_dict(
        {
            "model": {"base": "tiny"},
            "data": {"generate": {"examples": 1}},
            "method": {"name": name, **OPTIONS},
            "optim": {"lr": LEARNING_RATES[name], "warmup_steps": 1, "schedule": "constant"},
            "train": {
                "output_dir": str(tmp_path),
                "max_steps": 10,
                "batch_size": 2,
                "eval_every": 100,
                "save_every": 100,
                "progress": False,
                "log_batches": False,
            },
        }
    )
    model = get_method(name, **OPTIONS).apply(_model(tokenizer))
    trainer = Trainer(config, model, tokenizer, train, train)
    before = trainer.evaluate_loss()
    trainer.fit(resume=False)
    after = trainer.evaluate_loss()
    assert before is not None and after is not None
    assert after < before - 0.05, (before, after)


def test_unknown_method_lists_the_accepted_ones() -> None:
    assert set(method_names()) >= {"full", "lora", "adapter", "prompt_tuning", "bitfit", "freeze"}
    with pytest.raises(UserError, match="accepted: adapter, bitfit"):
        get_method("dora")


def test_config_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "model: {base: tiny, colour: red}\n"
        "method: {name: lora, rank: 0}\n"
        "optim: {lr: -1, schedule: wavy}\n"
        "train: {batch_size: many, max_steps: 0}\n"
        "typo_section: 1\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["method.alpha=-3", "nonsense=1"])
    problems = "\n".join(caught.value.problems)
    for expected in (
        "model.colour: unknown option",
        "method.rank must be at least 1",
        "optim.lr must be positive",
        "optim.schedule must be",
        "train.batch_size: expected int",
        "train.max_steps must be at least 1",
        "typo_section: unknown option",
        "method.alpha must be positive",
        "--set nonsense: unknown option",
    ):
        assert expected in problems
    assert "data: give data.train" in problems  # the missing data is reported in the same error
    assert len(caught.value.problems) == 10
    assert str(path) in str(caught.value)


def test_config_overrides_and_short_names() -> None:
    config = config_from_dict(
        {"data": {"generate": {"examples": 3}}},
        ["lr=1e-4", "method.rank=16", "train.cpu=true", "data.train=[a.jsonl]"],
    )
    assert config.optim.lr == 1e-4 and config.method.rank == 16 and config.train.cpu
    assert config.data.train == ["a.jsonl"]
    with pytest.raises(ConfigError, match=r"did you mean model\.dropout or method\.dropout"):
        config_from_dict({"data": {"generate": {"examples": 3}}}, ["dropout=0.1"])


def test_recipes_load() -> None:
    recipes = sorted(Path(__file__).resolve().parents[1].glob("recipes/*.yaml"))
    assert {p.name for p in recipes} >= {
        "lora_smollm2.yaml",
        "bitfit_smollm2.yaml",
        "prompt_tuning_smollm2.yaml",
    }
    for recipe in recipes:
        load_config(recipe)


def test_each_method_says_whether_it_has_a_merged_form(tokenizer: Any) -> None:
    mergeable = {name: get_method(name).mergeable for name in method_names()}
    assert mergeable == {
        "adapter": False,
        "bitfit": True,
        "freeze": True,
        "full": True,
        "lora": True,
        "prompt_tuning": False,
    }
    for name in ("adapter", "prompt_tuning"):
        assert get_method(name).merge(_model(tokenizer)) is None
    lora = get_method("lora", rank=2, alpha=4.0)
    merged = lora.merge(lora.apply(_model(tokenizer)))
    assert type(merged).__name__ == "LlamaForCausalLM"  # the PEFT wrapper folded away


@dataclass
class _NormsOnly(MethodBase):
    """A user's method: only the norms train; it keeps its own extra state, so no merged form."""

    name: str = "norms_only"
    mergeable = False

    def apply(self, model: torch.nn.Module) -> torch.nn.Module:
        for key, parameter in model.named_parameters():
            parameter.requires_grad_("norm" in key)
        return model


_MERGED: list[torch.nn.Module] = []


@dataclass
class _Tracked(MethodBase):
    """A user's mergeable method whose merged form comes from its own hook."""

    name: str = "tracked"

    def apply(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def merge(self, model: torch.nn.Module) -> torch.nn.Module | None:
        _MERGED.append(model)
        return model


def test_a_user_method_is_validated_and_exported_through_the_same_path(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fncall.train import methods
    from fncall.train.export import merged_model
    from fncall.train.methods import base

    monkeypatch.setattr(base, "_METHODS", dict(base._METHODS))  # registrations end with the test
    methods.register_method("norms_only", _NormsOnly)
    methods.register_method("tracked", _Tracked)
    data: dict[str, Any] = {"data": {"generate": {"examples": 3}}, "export": {"gguf": "q8_0"}}
    with pytest.raises(ConfigError, match="a norms_only model has no merged form"):
        config_from_dict({**data, "method": {"name": "norms_only"}})
    config = config_from_dict({**data, "method": {"name": "tracked"}})
    model = _model(tokenizer)
    assert merged_model(model, config) is model
    assert len(_MERGED) == 1 and _MERGED[0] is model  # its own hook made the merged form
    config = config_from_dict(
        {"data": {"generate": {"examples": 3}}, "method": {"name": "norms_only"}}
    )
    assert merged_model(_NormsOnly().apply(model), config) is None
