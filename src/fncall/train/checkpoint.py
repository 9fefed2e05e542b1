"""Atomic checkpoints: a run killed at any moment resumes from its last complete checkpoint.

A checkpoint is written into a hidden temporary folder beside its final place and renamed into
place only when every file is on disk, so ``checkpoints/step-NNNNNN`` either holds a complete
checkpoint or does not exist. It stores the trainable parameters (not the frozen base), the
optimizer and scheduler states, every RNG state, and ``state.json`` (step, batches consumed,
early-stopping state, history).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fncall.errors import UserError

_STEP_DIR = re.compile(r"^step-(\d{6,})$")
# write_atomic_dir's folders: .tmp-NAME-<mkdtemp suffix> and .old-NAME-<pid>, neither holding "-"
_UNFINISHED = re.compile(r"^\.(tmp|old)-(.+)-[^-]+$")
WEIGHTS = "trainable.safetensors"


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: p.detach().to("cpu", copy=True).contiguous()
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def load_trainable(model: nn.Module, tensors: dict[str, torch.Tensor], *, source: str) -> None:
    """Copy saved trainable tensors into ``model``; a missing or extra name is an error."""
    parameters = dict(model.named_parameters())
    expected = {name for name, p in parameters.items() if p.requires_grad}
    missing, unexpected = expected - set(tensors), set(tensors) - set(parameters)
    if missing or unexpected:
        raise UserError(
            f"{source} does not match this model and method: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]} (was it written with another method or config?)"
        )
    with torch.no_grad():
        for name, tensor in tensors.items():
            parameters[name].copy_(tensor.to(parameters[name].device, parameters[name].dtype))


def write_atomic_dir(final: Path, write: Any) -> Path:
    """Run ``write(tmp_dir)`` then rename ``tmp_dir`` to ``final`` (replacing an old one)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        write(tmp)
        for file in tmp.iterdir():  # make the bytes durable before the rename publishes them
            with file.open("rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():
            old = final.with_name(f".old-{final.name}-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def remove_unfinished_writes(directory: Path) -> None:
    """Tidy what ``write_atomic_dir`` calls killed midway left in ``directory``.

    A ``.tmp-NAME-*`` folder was never published: removed. A ``.old-NAME-*`` folder is the
    previous complete ``NAME``: put back if the kill came between the two renames (``NAME``
    missing), else removed.
    """
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        found = _UNFINISHED.match(path.name)
        if found is None or not path.is_dir():
            continue
        kind, name = found.groups()
        if kind == "old" and not (directory / name).exists():
            os.replace(path, directory / name)
        else:
            shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(
    root: Path,
    *,
    step: int,
    model: nn.Module,
    optimizer: Any,
    scheduler: Any,
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write ``root/checkpoints/step-NNNNNN`` atomically, then keep only the newest ``keep``."""
    directory = Path(root) / "checkpoints"

    def write(tmp: Path) -> None:
        save_file(trainable_tensors(model), str(tmp / WEIGHTS))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(rng_state(), tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=1))

    path = write_atomic_dir(directory / f"step-{step:06d}", write)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders of a killed write are ignored)."""
    directory = Path(root) / "checkpoints"
    if not directory.is_dir():
        return []
    found = [
        p
        for p in directory.iterdir()
        if p.is_dir() and _STEP_DIR.match(p.name) and (p / "state.json").is_file()
    ]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(root: Path) -> Path | None:
    checkpoints = list_checkpoints(root)
    return checkpoints[-1] if checkpoints else None


def load_checkpoint(
    path: Path, *, model: nn.Module, optimizer: Any, scheduler: Any
) -> dict[str, Any]:
    """Restore everything saved in ``path``; returns its ``state.json``."""
    try:
        state: dict[str, Any] = json.loads((path / "state.json").read_text())
        load_trainable(model, load_file(str(path / WEIGHTS)), source=str(path))
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
        set_rng_state(torch.load(path / "rng.pt", weights_only=False))
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"checkpoint {str(path)!r} cannot be loaded: {exc}") from None
    return state
