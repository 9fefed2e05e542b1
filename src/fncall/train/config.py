"""The run configuration: a YAML file checked against dataclasses.

Every problem (unknown keys, wrong types, impossible values) is collected and raised at once in
one ``ConfigError``. Any option can be overridden as ``key=value`` (``optim.lr=1e-4``,
``method.rank=16``); a leaf name that is unique across sections may be used alone (``lr=1e-4``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fncall.errors import ConfigError

if TYPE_CHECKING:
    from fncall.train.methods import PeftMethod

GGUF_OUTTYPES = ("q8_0", "f16", "f32")


@dataclass
class ModelConfig:
    base: str = "smollm2-135m"  # catalogue name, .gguf file, Hugging Face folder, or "tiny"
    format: str = "hermes"  # tool-call syntax (fncall.formats)
    chat_template: str | None = None  # override the model's own template
    dropout: float | None = None  # set the model's attention dropout, if it has one


@dataclass
class GenerateConfig:
    examples: int = 0  # how many examples to generate from the library
    library: str = "builtin"  # "builtin", or a .py / .json function library
    masking_probability: float = 2 / 3
    max_distractors: int = 4
    mix: dict[str, float] | None = None  # weights per kind; None: the default mix


@dataclass
class DataConfig:
    train: list[str] = field(default_factory=list)  # files or folders to import
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    validation_fraction: float = 0.05
    test_fraction: float = 0.05
    max_seq_len: int = 768
    contamination_guard: bool = True


@dataclass
class MethodConfig:
    name: str = "lora"
    rank: int = 32  # lora
    alpha: float = 64.0  # lora
    dropout: float = 0.05  # lora, adapter
    target_modules: list[str] | str = "all-linear"  # lora
    bottleneck: int = 16  # adapter
    targets: list[str] = field(default_factory=lambda: ["self_attn", "mlp"])  # adapter
    num_virtual_tokens: int = 20  # prompt_tuning
    init_text: str | None = None  # prompt_tuning
    add_missing_biases: bool = True  # bitfit
    layers: int = 2  # freeze


@dataclass
class OptimConfig:
    name: str = "adamw"  # adamw | sgd
    lr: float = 5e-5
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    momentum: float = 0.9  # sgd
    schedule: str = "cosine"  # cosine | linear | constant
    warmup_steps: int = 0
    warmup_ratio: float = 0.03  # used when warmup_steps is 0
    grad_clip: float = 1.0  # 0 disables clipping


@dataclass
class TrainConfig:
    output_dir: str = "runs/finetune"
    max_steps: int = 300  # optimizer steps
    batch_size: int = 4
    grad_accum: int = 1
    seed: int = 0
    eval_every: int = 50
    save_every: int = 50
    keep_checkpoints: int = 2
    patience: int = 0  # early stopping after this many evaluations without improvement; 0: off
    min_delta: float = 0.0
    val_accuracy_examples: int = (
        0  # also score calls by generation on this many validation examples
    )
    log_batches: bool = True  # append each batch's example indices to batches.jsonl
    progress: bool = True
    cpu: bool = False  # force the CPU even when an accelerator is present
    # "bf16" (autocast; faster on CPUs with AVX512-BF16/AMX and on GPUs), "fp16" (GPUs),
    # "fp32"; null leaves it to `accelerate launch --mixed_precision` / accelerate's config
    mixed_precision: str | None = None


@dataclass
class ExportConfig:
    adapter: bool = True  # the trained parameters alone (PEFT adapter folder or safetensors)
    merged: bool = True  # a full model folder transformers (and our engine) can load
    gguf: str | None = None  # q8_0, f16 or f32: also write model.gguf for llama.cpp (GGUF bases)
    model_card: bool = True
    scores_before: dict[str, float] | None = None  # for the model card
    scores_after: dict[str, float] | None = None


@dataclass
class RunConfig:
    name: str = "finetune"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- building and checking


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _check_value(value: Any, hint: Any, where: str, problems: list[str]) -> Any:
    """Return ``value`` converted to ``hint`` where that is lossless, else record a problem."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            trial: list[str] = []
            converted = _check_value(value, option, where, trial)
            if not trial:
                return converted
        problems.append(f"{where}: expected {_type_name(hint)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where, problems)  # type: ignore[arg-type]
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {value!r}")
            return value
        (item,) = typing.get_args(hint) or (Any,)
        return [_check_value(v, item, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            problems.append(f"{where}: expected a mapping, got {value!r}")
            return value
        _, item = typing.get_args(hint)
        return {k: _check_value(v, item, f"{where}.{k}", problems) for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" as a string
            return float(value)
        except ValueError:
            pass
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    problems.append(f"{where}: expected {_type_name(hint)}, got {value!r}")
    return value


def _build(cls: type, data: Any, where: str, problems: list[str]) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        problems.append(f"{where or 'config'}: expected a mapping of options, got {data!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            problems.append(
                f"{where + '.' if where else ''}{key}: unknown option; "
                f"accepted: {', '.join(sorted(names))}"
            )
    values = {}
    for name in names:
        if name in data and dataclasses.is_dataclass(hints[name]):
            values[name] = _build(
                hints[name], data[name], f"{where + '.' if where else ''}{name}", problems
            )
        elif name in data:
            found: list[str] = []
            value = _check_value(
                data[name], hints[name], f"{where + '.' if where else ''}{name}", found
            )
            if found:  # keep the default so the value checks below still run on the rest
                problems.extend(found)
            else:
                values[name] = value
    try:
        return cls(**values)
    except TypeError:
        return cls()


def _validate(config: RunConfig, problems: list[str]) -> None:
    from fncall.formats.registry import format_names
    from fncall.train.methods import method_names

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    m, d, o, t = config.method, config.data, config.optim, config.train
    need(
        config.model.format in format_names(),
        f"model.format: unknown format {config.model.format!r}; "
        f"accepted: {', '.join(format_names())}",
    )
    need(
        config.model.dropout is None or 0 <= config.model.dropout < 1,
        f"model.dropout must be in [0, 1), got {config.model.dropout}",
    )
    need(
        m.name in method_names(),
        f"method.name: unknown method {m.name!r}; accepted: {', '.join(method_names())}",
    )
    need(m.rank >= 1, f"method.rank must be at least 1, got {m.rank}")
    need(m.alpha > 0, f"method.alpha must be positive, got {m.alpha}")
    need(0 <= m.dropout < 1, f"method.dropout must be in [0, 1), got {m.dropout}")
    need(m.bottleneck >= 1, f"method.bottleneck must be at least 1, got {m.bottleneck}")
    need(
        m.num_virtual_tokens >= 1,
        f"method.num_virtual_tokens must be at least 1, got {m.num_virtual_tokens}",
    )
    need(m.layers >= 1, f"method.layers must be at least 1, got {m.layers}")
    need(o.name in ("adamw", "sgd"), f"optim.name must be 'adamw' or 'sgd', got {o.name!r}")
    need(o.lr > 0, f"optim.lr must be positive, got {o.lr}")
    need(o.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {o.weight_decay}")
    need(
        len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
        f"optim.betas must be two numbers in [0, 1), got {o.betas}",
    )
    need(
        o.schedule in ("cosine", "linear", "constant"),
        f"optim.schedule must be cosine, linear or constant, got {o.schedule!r}",
    )
    need(o.warmup_steps >= 0, f"optim.warmup_steps must be >= 0, got {o.warmup_steps}")
    need(0 <= o.warmup_ratio < 1, f"optim.warmup_ratio must be in [0, 1), got {o.warmup_ratio}")
    need(o.grad_clip >= 0, f"optim.grad_clip must be >= 0 (0 disables), got {o.grad_clip}")
    for name in (
        "max_steps",
        "batch_size",
        "grad_accum",
        "eval_every",
        "save_every",
        "keep_checkpoints",
    ):
        value = getattr(t, name)
        need(value >= 1, f"train.{name} must be at least 1, got {value}")
    need(
        t.mixed_precision in (None, "fp32", "bf16", "fp16"),
        f"train.mixed_precision must be bf16, fp16, fp32 or null, got {t.mixed_precision!r}",
    )
    need(t.patience >= 0, f"train.patience must be >= 0, got {t.patience}")
    need(
        t.val_accuracy_examples >= 0,
        f"train.val_accuracy_examples must be >= 0, got {t.val_accuracy_examples}",
    )
    need(d.max_seq_len >= 16, f"data.max_seq_len must be at least 16, got {d.max_seq_len}")
    need(
        0 <= d.validation_fraction < 1,
        f"data.validation_fraction must be in [0, 1), got {d.validation_fraction}",
    )
    need(0 <= d.test_fraction < 1, f"data.test_fraction must be in [0, 1), got {d.test_fraction}")
    need(
        d.validation_fraction + d.test_fraction < 1,
        "data.validation_fraction + data.test_fraction must be below 1",
    )
    need(
        0 <= d.generate.masking_probability <= 1,
        "data.generate.masking_probability must be in [0, 1], "
        f"got {d.generate.masking_probability}",
    )
    need(
        d.generate.max_distractors >= 0,
        f"data.generate.max_distractors must be >= 0, got {d.generate.max_distractors}",
    )
    need(
        d.generate.examples >= 0, f"data.generate.examples must be >= 0, got {d.generate.examples}"
    )
    need(
        bool(d.train) or d.generate.examples > 0,
        "data: give data.train (files or folders) or data.generate.examples > 0",
    )
    e = config.export
    need(
        e.gguf is None or e.gguf in GGUF_OUTTYPES,
        f"export.gguf must be {', '.join(GGUF_OUTTYPES)} or null, got {e.gguf!r}",
    )
    if e.gguf and m.name in method_names() and not configured_method(config).mergeable:
        problems.append(
            f"export.gguf: a {m.name} model has no merged form to write as GGUF; set it to null"
        )
    if e.gguf and not e.merged:
        problems.append("export.gguf needs export.merged: true (the GGUF is the merged model)")
    if t.patience and d.validation_fraction == 0:
        problems.append("train.patience needs validation data: set data.validation_fraction > 0")


def configured_method(config: RunConfig, **extra: Any) -> PeftMethod:
    """The fine-tuning method ``config.method`` names, built with its options (each method
    takes the options it knows); ``extra`` adds run-time ones such as the tokenizer."""
    from fncall.train.methods import get_method

    options = {k: v for k, v in vars(config.method).items() if k != "name"}
    return get_method(config.method.name, **options, **extra)


def _leaf_paths(cls: type, prefix: str = "") -> list[str]:
    paths = []
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            paths.extend(_leaf_paths(hint, f"{prefix}{f.name}."))  # type: ignore[arg-type]
        else:
            paths.append(prefix + f.name)
    return paths


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], problems: list[str]) -> None:
    """``key=value`` strings into the raw config mapping (values parsed as YAML)."""
    leaves = _leaf_paths(RunConfig)
    for override in overrides:
        key, sep, raw = override.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {override!r}: expected key=value")
            continue
        if key not in leaves:
            matches = [p for p in leaves if p.rsplit(".", 1)[-1] == key]
            if len(matches) != 1:
                hint = f"; did you mean {' or '.join(matches)}?" if matches else ""
                problems.append(f"--set {key}: unknown option{hint}")
                continue
            key = matches[0]
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value


def config_from_dict(
    data: Mapping[str, Any] | None, overrides: Iterable[str] = (), *, source: str = "config"
) -> RunConfig:
    problems: list[str] = []
    raw = _plain(dict(data or {}))
    apply_overrides(raw, overrides, problems)
    config = _build(RunConfig, raw, "", problems)
    _validate(config, problems)
    if problems:
        raise ConfigError(problems, source=source)
    return config  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> RunConfig:
    """Read a YAML run config (or only defaults when ``path`` is None) and apply overrides."""
    if path is None:
        return config_from_dict({}, overrides, source="command line")
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            [f"cannot read the config file: {exc.strerror}"], source=str(path)
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], source=str(path)) from None
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(["the top level must be a mapping of sections"], source=str(path))
    return config_from_dict(data, overrides, source=str(path))


def save_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")


def accelerate_precision(config: RunConfig) -> str | None:
    """``train.mixed_precision`` in accelerate's words (``fp32`` is its ``no``)."""
    value = config.train.mixed_precision
    return "no" if value == "fp32" else value
