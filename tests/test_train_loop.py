"""The training loop: resume after a kill, early stopping, exports, curves, accelerate launch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("accelerate")

from fncall.train.checkpoint import latest_checkpoint, list_checkpoints
from fncall.train.config import load_config
from fncall.train.run import run_training

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _config(tmp_path: Path, out: str, **train: Any) -> Path:
    data = {
        "name": "test-run",
        "model": {"base": "tiny"},
        "data": {
            "generate": {"examples": 24, "max_distractors": 0},
            "max_seq_len": 700,
            "validation_fraction": 0.1,
            "test_fraction": 0.05,
            "contamination_guard": False,
        },
        "method": {"name": "lora", "rank": 4, "alpha": 8, "dropout": 0.1},
        "optim": {"lr": 5e-3, "warmup_steps": 2},
        "train": {
            "output_dir": str(tmp_path / out),
            "batch_size": 2,
            "max_steps": 16,
            "save_every": 2,
            "eval_every": 16,
            "progress": False,
            **train,
        },
        "export": {"merged": False, "model_card": False},
    }
    path = tmp_path / f"{out}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _batches(out: Path) -> list[tuple[int, list[int]]]:
    rows = [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]
    return [(r["batch"], r["indices"]) for r in rows]


def test_resume_after_sigkill_repeats_no_batch(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    reference = run_training(load_config(_config(tmp_path, "reference")))
    assert reference["steps"] == 16

    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "fncall", "train", "--config", str(_config(tmp_path, "killed"))],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            latest = latest_checkpoint(killed_dir)
            if latest is not None and int(latest.name.split("-")[1]) >= 4:
                break
            time.sleep(0.01)
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    checkpoint = latest_checkpoint(killed_dir)
    assert checkpoint is not None
    killed_at = int(checkpoint.name.split("-")[1])
    assert 4 <= killed_at < 16

    resumed = run_training(load_config(_config(tmp_path, "killed")))
    assert resumed["resumed_from"] == str(checkpoint)
    assert resumed["steps"] == 16
    ran = _batches(killed_dir)
    numbers = [number for number, _ in ran]
    assert numbers == list(range(len(numbers)))  # every micro-batch once, in order: none repeated
    assert ran == _batches(tmp_path / "reference")  # and exactly the uninterrupted run's data order
    final = load_file(str(list_checkpoints(killed_dir)[-1] / "trainable.safetensors"))
    expected = load_file(
        str(list_checkpoints(tmp_path / "reference")[-1] / "trainable.safetensors")
    )
    for name, tensor in expected.items():  # same RNG (dropout) and optimizer state after resume
        torch.testing.assert_close(final[name], tensor, rtol=1e-4, atol=1e-5)
    # one train loss per step, none lost or doubled by the kill, matching the unbroken run
    losses = json.loads((killed_dir / "step_losses.json").read_text())
    reference_losses = json.loads((tmp_path / "reference" / "step_losses.json").read_text())
    assert len(losses) == 16
    assert losses == pytest.approx(reference_losses, rel=1e-3)


def test_half_written_checkpoints_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "checkpoints" / ".tmp-step-000020-abc").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step-000015").mkdir()  # no state.json: incomplete
    assert latest_checkpoint(tmp_path) is None


def test_early_stopping_exports_and_curves(tmp_path: Path) -> None:
    from fncall.train.export import load_finetuned

    path = _config(
        tmp_path,
        "early",
        max_steps=40,
        eval_every=2,
        patience=1,
        min_delta=10.0,
        save_every=100,
        val_accuracy_examples=1,
    )
    data = yaml.safe_load(path.read_text())
    data["method"] = {"name": "bitfit"}
    data["export"] = {"merged": True, "model_card": True, "scores_after": {"simple": 50.0}}
    path.write_text(yaml.safe_dump(data))
    report = run_training(load_config(path))
    out = tmp_path / "early"
    # min_delta=10 means no evaluation counts as better than the first: stop at the next one
    assert report["stopped_early"] and report["steps"] == 4 and report["best_step"] == 2
    history = json.loads((out / "history.json").read_text())
    assert [row["step"] for row in history] == [2, 4]
    assert all(row["val_accuracy"] is not None for row in history)
    assert (out / "curves.png").stat().st_size > 5000
    card = (out / "MODEL_CARD.md").read_text()
    assert "bitfit" in card and "| simple | 50.0 |" in card

    import torch
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out / "merged")  # plain transformers
    assert merged.config.attention_bias and merged.config.mlp_bias
    adapted, tokenizer = load_finetuned(out / "adapter")
    ids = torch.tensor([tokenizer("Weather in Oslo?")["input_ids"]])
    torch.testing.assert_close(merged(ids).logits, adapted(ids).logits)


def test_lora_merged_model_matches_the_adapter(tmp_path: Path) -> None:
    import torch

    from fncall.train.export import load_finetuned

    path = _config(tmp_path, "merge", max_steps=4, save_every=4, eval_every=4)
    data = yaml.safe_load(path.read_text())
    data["export"] = {"merged": True}
    path.write_text(yaml.safe_dump(data))
    run_training(load_config(path))
    merged, tokenizer = load_finetuned(tmp_path / "merge" / "merged")
    adapted, _ = load_finetuned(tmp_path / "merge" / "adapter")
    adapted.eval()
    ids = torch.tensor([tokenizer("Convert 3 USD to EUR")["input_ids"]])
    torch.testing.assert_close(merged(ids).logits, adapted(ids).logits, rtol=1e-4, atol=1e-4)
    assert (tmp_path / "merge" / "merged" / "chat_template.jinja").is_file()

    from fncall.engine import load_engine
    from fncall.engine.transformers import TransformersEngine

    from_adapter = load_engine(tmp_path / "merge" / "adapter")  # a run's adapter folder
    from_merged = load_engine(tmp_path / "merge" / "merged")
    assert isinstance(from_adapter, TransformersEngine)
    prompt = "Convert 3 USD to EUR"
    assert from_adapter.generate(prompt, max_tokens=6).text == (
        from_merged.generate(prompt, max_tokens=6).text
    )


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: {name: lora, rank: -1}\noptim: {lr: 0}\nwhat: 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "fncall", "train", "--config", str(bad)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "4 problem(s)" in result.stderr and "method.rank" in result.stderr


@pytest.mark.slow
def test_accelerate_launch_runs_one_tiny_training(tmp_path: Path) -> None:
    if shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("the accelerate launcher is not installed")
    path = _config(tmp_path, "launched", max_steps=3, save_every=3, eval_every=3)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "accelerate"),
            "launch",
            "--num_processes",
            "1",
            "--cpu",
            "-m",
            "fncall",
            "train",
            "--config",
            str(path),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "launched" / "report.json").read_text())
    assert report["steps"] == 3


def test_gguf_export_needs_a_gguf_base_and_says_so_before_training(tmp_path: Path) -> None:
    from fncall.errors import ConfigError, UserError

    path = _config(tmp_path, "tiny-gguf")
    data = yaml.safe_load(path.read_text())
    data["export"] = {"merged": True, "gguf": "q8_0"}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=r"export\.gguf needs a GGUF base model"):
        run_training(load_config(path))
    assert not (tmp_path / "tiny-gguf").exists()  # refused before any work
    with pytest.raises(ConfigError) as error:
        load_config(path, ["export.gguf=q2", "method.name=prompt_tuning", "export.merged=false"])
    assert "export.gguf must be q8_0, f16, f32 or null, got 'q2'" in str(error.value)
    with pytest.raises(ConfigError) as error:
        load_config(path, ["method.name=prompt_tuning", "export.merged=false"])
    message = str(error.value)
    assert "prompt_tuning model has no merged form" in message
    assert "export.gguf needs export.merged: true" in message


@pytest.mark.model
@pytest.mark.slow
def test_lora_run_on_smollm2_exports_a_gguf_llama_cpp_loads(tmp_path: Path) -> None:
    from fncall.engine.llama_cpp import LlamaCppEngine
    from fncall.engine.transformers import TransformersEngine

    path = _config(tmp_path, "smol", max_steps=2, save_every=2, eval_every=2)
    data = yaml.safe_load(path.read_text())
    data["model"] = {"base": "smollm2-135m"}
    data["data"]["max_seq_len"] = 512
    data["export"] = {"merged": True, "gguf": "f32", "model_card": True}
    path.write_text(yaml.safe_dump(data))
    report = run_training(load_config(path))
    out = tmp_path / "smol"
    assert report["gguf"] == str(out / "model.gguf")
    prompt = "<|im_start|>user\nWeather in Oslo?<|im_end|>\n<|im_start|>assistant\n"
    expected = TransformersEngine(out / "merged").generate(prompt, max_tokens=10).text
    assert LlamaCppEngine(out / "model.gguf", n_ctx=256).generate(prompt, max_tokens=10).text == (
        expected
    )
    assert "model.gguf" in (out / "MODEL_CARD.md").read_text()


def test_a_resume_after_a_kill_mid_write(tmp_path: Path) -> None:
    """Issue 20, item 11: a kill in the middle of writing left half a line in batches.jsonl (the
    resume failed with JSONDecodeError) and .tmp-step-* folders that no run ever removed."""
    config = _config(tmp_path, "run", max_steps=4)
    run_training(load_config(config))
    out = tmp_path / "run"
    reference = _batches(out)
    checkpoints = out / "checkpoints"
    # Killed while publishing step 4: its folder never renamed into place, half a batch row.
    (checkpoints / "step-000004").rename(checkpoints / ".tmp-step-000004-k1ll3d_x")
    (checkpoints / ".tmp-step-000006-abcdefgh").mkdir()
    with (out / "batches.jsonl").open("a") as handle:
        handle.write('{"step": 5, "batch": 8, "indi')
    resumed = run_training(load_config(config))
    assert resumed["resumed_from"] == str(checkpoints / "step-000002")
    assert _batches(out) == reference  # the torn row dropped, steps 3-4 logged once
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-000002", "step-000004"]


def test_a_kill_between_the_two_renames_puts_the_old_folder_back(tmp_path: Path) -> None:
    from fncall.train.checkpoint import remove_unfinished_writes

    (tmp_path / ".old-best-4242").mkdir()  # "best" moved aside, the new one not yet in place
    (tmp_path / ".old-best-4242" / "trainable.safetensors").write_text("previous best")
    (tmp_path / ".tmp-best-q8x_2k1z").mkdir()
    (tmp_path / "step-000002").mkdir()
    remove_unfinished_writes(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "step-000002"]
    assert (tmp_path / "best" / "trainable.safetensors").read_text() == "previous best"
