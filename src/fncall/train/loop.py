"""The training loop: the same code on one CPU and under ``accelerate launch`` (multi-GPU, FSDP).

Data order is a pure function of the seed and the number of batches consumed: epoch ``e`` uses a
permutation seeded by ``(seed, e)``, and micro-batch ``k`` of the run is batch ``k mod n`` of
epoch ``k // n``. Process ``r`` of ``P`` takes micro-batches ``r, r+P, ...``. A checkpoint stores
the count, so a resumed run continues with exactly the next batch: nothing is repeated or skipped.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from fncall.errors import UserError
from fncall.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_trainable,
    remove_unfinished_writes,
    save_checkpoint,
    trainable_tensors,
    write_atomic_dir,
)
from fncall.train.collate import IGNORE_INDEX, Collator, EncodedDataset
from fncall.train.config import RunConfig, accelerate_precision
from fncall.train.data import TrainingExample


@dataclass
class TrainState:
    step: int = 0  # optimizer steps done
    consumed: int = 0  # micro-batches consumed by all processes together
    tokens: int = 0  # non-padding tokens seen
    best_val_loss: float = math.inf
    best_step: int = 0
    evals_without_improvement: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)  # train loss of every step


class BatchOrder:
    """Example indices of micro-batch ``k``, deterministic in (seed, k)."""

    def __init__(self, size: int, batch_size: int, seed: int) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.per_epoch = max(1, math.ceil(size / batch_size))
        self._epoch = -1
        self._perm: list[int] = []

    def __call__(self, k: int) -> list[int]:
        epoch, within = divmod(k, self.per_epoch)
        if epoch != self._epoch:
            self._perm = list(range(self.size))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(self._perm)
            self._epoch = epoch
        return self._perm[within * self.batch_size : (within + 1) * self.batch_size]


def lr_lambda(schedule: str, warmup: int, total: int) -> Any:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if schedule == "linear":
            return 1.0 - progress
        return 1.0

    return factor


def build_optimizer(model: nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """AdamW or SGD over the trainable parameters; biases and norms get no weight decay."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 or "norm" in name else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": config.optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    o = config.optim
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum)
    return torch.optim.AdamW(groups, lr=o.lr, betas=(o.betas[0], o.betas[1]))


@dataclass
class TrainResult:
    state: TrainState
    output_dir: Path
    resumed_from: Path | None
    seconds: float  # this invocation only (a resumed run counts from the resume)
    tokens: int  # tokens processed in this invocation

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class Trainer:
    """Runs optimizer steps over an encoded dataset, with evaluation, checkpoints and early stop."""

    def __init__(
        self,
        config: RunConfig,
        model: nn.Module,
        tokenizer: Any,
        train_set: EncodedDataset,
        val_set: EncodedDataset | None = None,
        *,
        val_examples: Sequence[TrainingExample] = (),
        accelerator: Any = None,
    ) -> None:
        from accelerate import Accelerator

        self.config = config
        self.accelerator = accelerator or Accelerator(
            cpu=config.train.cpu, mixed_precision=accelerate_precision(config)
        )
        self.tokenizer = tokenizer
        self.train_set, self.val_set = train_set, val_set
        self.val_examples = list(val_examples)
        self.output_dir = Path(config.train.output_dir)
        self.collate = Collator(pad_token_id=_pad_id(tokenizer))
        self.order = BatchOrder(len(train_set), config.train.batch_size, config.train.seed)
        optimizer = build_optimizer(model, config)
        t = config.train
        warmup = config.optim.warmup_steps or math.ceil(config.optim.warmup_ratio * t.max_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(config.optim.schedule, warmup, t.max_steps)
        )
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.state = TrainState()

    # ------------------------------------------------------------------ helpers

    @property
    def unwrapped(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)  # type: ignore[no-any-return]

    def _batch(self, k: int) -> tuple[list[int], dict[str, torch.Tensor]]:
        indices = self.order(k)
        batch = self.collate([self.train_set[i] for i in indices])
        return indices, {name: t.to(self.accelerator.device) for name, t in batch.items()}

    def _log_batches(self, rows: list[dict[str, Any]]) -> None:
        if not self.config.train.log_batches:
            return
        with (self.output_dir / f"batches{self._rank_suffix()}.jsonl").open("a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")

    def _rank_suffix(self) -> str:
        index = self.accelerator.process_index
        return "" if index == 0 else f".rank{index}"

    def _truncate_batch_log(self, step: int) -> None:
        """Batches logged after the checkpoint died with the killed run; they will run again.
        A kill mid-write leaves half a last line: dropped with them."""
        path = self.output_dir / f"batches{self._rank_suffix()}.jsonl"
        if not path.is_file():
            return
        lines = path.read_text().splitlines()
        kept = []
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line) if line else None
            except json.JSONDecodeError:
                if number == len(lines):  # torn by the kill
                    break
                raise UserError(
                    f"{path}: line {number} is not JSON ({line[:80]!r}); only the last line can "
                    "be torn by a kill: delete the file to train again without the batch log"
                ) from None
            if row is not None and row["step"] <= step:
                kept.append(line)
        path.write_text("".join(line + "\n" for line in kept))

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def evaluate_loss(self) -> float | None:
        if not self.val_set or len(self.val_set) == 0:
            return None
        self.model.eval()
        acc, size = self.accelerator, self.config.train.batch_size
        mine = list(range(acc.process_index, len(self.val_set), acc.num_processes))
        total = torch.zeros(2, device=acc.device, dtype=torch.float64)
        for start in range(0, len(mine), size):
            batch = self.collate([self.val_set[i] for i in mine[start : start + size]])
            batch = {name: t.to(acc.device) for name, t in batch.items()}
            loss = self.model(**batch).loss
            count = (batch["labels"][:, 1:] != IGNORE_INDEX).sum()
            total += torch.stack([loss.double() * count, count.double()])
        total = acc.reduce(total, "sum")
        self.model.train()
        return float(total[0] / total[1]) if total[1] > 0 else None

    def evaluate_accuracy(self) -> float | None:
        n = self.config.train.val_accuracy_examples
        if not n or not self.val_examples or not self.accelerator.is_main_process:
            return None
        from fncall.train.metrics import call_accuracy

        return call_accuracy(
            self.unwrapped,
            self.tokenizer,
            self.val_examples[:n],
            format=self.config.model.format,
            chat_template=self.config.model.chat_template,
        )

    # ------------------------------------------------------------------ the loop

    def _save(self) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        if acc.is_main_process:
            save_checkpoint(
                self.output_dir,
                step=self.state.step,
                model=self.unwrapped,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                state=asdict(self.state),
                keep=self.config.train.keep_checkpoints,
            )
        acc.wait_for_everyone()

    def _evaluate(self, train_loss: float) -> None:
        val_loss = self.evaluate_loss()
        accuracy = self.evaluate_accuracy()
        s = self.state
        s.history.append(
            {
                "step": s.step,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_accuracy": accuracy,
                "lr": self.scheduler.get_last_lr()[0],
                "tokens": s.tokens,
            }
        )
        if val_loss is None:
            return
        if val_loss < s.best_val_loss - self.config.train.min_delta:
            s.best_val_loss, s.best_step, s.evals_without_improvement = val_loss, s.step, 0
            if self.config.train.patience and self.accelerator.is_main_process:
                tensors = trainable_tensors(self.unwrapped)
                write_atomic_dir(
                    self.output_dir / "best",
                    lambda tmp: save_file(tensors, str(tmp / "trainable.safetensors")),
                )
        else:
            s.evals_without_improvement += 1
            patience = self.config.train.patience
            s.stopped_early = bool(patience) and s.evals_without_improvement >= patience

    def fit(self, *, resume: bool | None = None) -> TrainResult:
        """Train to ``max_steps`` (or an early stop). ``resume=None`` resumes when the output
        folder has a checkpoint; ``False`` refuses to overwrite one."""
        from tqdm.auto import tqdm

        acc, t = self.accelerator, self.config.train
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if acc.is_main_process:
            remove_unfinished_writes(self.output_dir / "checkpoints")
            remove_unfinished_writes(self.output_dir)  # best/
        acc.wait_for_everyone()
        checkpoint = latest_checkpoint(self.output_dir) if resume is not False else None
        if checkpoint is not None:
            saved = load_checkpoint(
                checkpoint, model=self.unwrapped, optimizer=self.optimizer, scheduler=self.scheduler
            )
            saved.pop("step", None)
            self.state = TrainState(**{**saved, "step": int(checkpoint.name.split("-")[1])})
            if acc.is_main_process:
                self._truncate_batch_log(self.state.step)
        elif acc.is_main_process and t.log_batches:
            (self.output_dir / "batches.jsonl").unlink(missing_ok=True)
        started = time.perf_counter()
        tokens_at_start = self.state.tokens
        self.model.train()
        bar = tqdm(
            total=t.max_steps,
            initial=self.state.step,
            desc="training",
            disable=not (t.progress and acc.is_main_process),
            dynamic_ncols=True,
        )
        running: list[float] = []
        while self.state.step < t.max_steps and not self.state.stopped_early:
            step_loss = torch.zeros((), device=acc.device)
            rows = []
            for micro in range(t.grad_accum):
                k = self.state.consumed + micro * acc.num_processes + acc.process_index
                indices, batch = self._batch(k)
                rows.append(
                    {"step": self.state.step + 1, "micro": micro, "batch": k, "indices": indices}
                )
                last = micro == t.grad_accum - 1
                with contextlib.nullcontext() if last else acc.no_sync(self.model):
                    loss = self.model(**batch).loss / t.grad_accum
                    acc.backward(loss)
                step_loss += loss.detach()
                self.state.tokens += int(batch["attention_mask"].sum()) * acc.num_processes
            if self.config.optim.grad_clip > 0:
                acc.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.state.consumed += t.grad_accum * acc.num_processes
            self.state.step += 1
            self._log_batches(rows)
            loss_value = float(acc.reduce(step_loss, "mean"))
            running.append(loss_value)
            self.state.step_losses.append(loss_value)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            if self.state.step % t.eval_every == 0 or self.state.step == t.max_steps:
                self._evaluate(sum(running) / len(running))
                running = []
                if acc.is_main_process:
                    self.save_curves()
            if (
                self.state.step % t.save_every == 0
                or self.state.step == t.max_steps
                or self.state.stopped_early
            ):
                self._save()
        bar.close()
        if self.state.stopped_early and self.config.train.patience:
            self.restore_best()
        seconds = time.perf_counter() - started
        return TrainResult(
            state=self.state,
            output_dir=self.output_dir,
            resumed_from=checkpoint,
            seconds=seconds,
            tokens=self.state.tokens - tokens_at_start,
        )

    def restore_best(self) -> None:
        from safetensors.torch import load_file

        path = self.output_dir / "best" / "trainable.safetensors"
        if path.is_file():
            load_trainable(self.unwrapped, load_file(str(path)), source=str(path))

    def save_curves(self) -> None:
        from fncall.train.plots import plot_history

        (self.output_dir / "history.json").write_text(json.dumps(self.state.history, indent=1))
        (self.output_dir / "step_losses.json").write_text(json.dumps(self.state.step_losses))
        plot_history(
            self.state.history,
            self.output_dir / "curves.png",
            title=self.config.name,
            step_losses=self.state.step_losses,
        )


def _pad_id(tokenizer: Any) -> int:
    from fncall.train.collate import pad_token_id

    return pad_token_id(tokenizer)
