"""Training curves as a PNG: train loss (every step, faint, and its mean between evaluations)
and validation loss on the left axis, validation call accuracy (when measured) on the right."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_history(
    history: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    title: str = "",
    step_losses: Sequence[float] = (),
) -> Path | None:
    """Write the curves to ``path`` (atomically); None when there is nothing to plot."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    steps = [row["step"] for row in history]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if step_losses:
        every = range(1, len(step_losses) + 1)
        ax.plot(every, step_losses, color="tab:blue", alpha=0.25, lw=1, label="train loss (step)")
    train = [float(row["train_loss"]) for row in history]
    ax.plot(steps, train, color="tab:blue", marker="o", ms=3, label="train loss (mean)")
    val = [(row["step"], row["val_loss"]) for row in history if row.get("val_loss") is not None]
    if val:
        ax.plot(
            *zip(*val, strict=True), color="tab:orange", marker="s", ms=3, label="validation loss"
        )
    ax.set_xlabel("optimizer step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss (target tokens only)")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    accuracy = [
        (row["step"], row["val_accuracy"]) for row in history if row.get("val_accuracy") is not None
    ]
    if accuracy:
        right = ax.twinx()
        right.plot(
            *zip(*accuracy, strict=True),
            color="tab:green",
            marker="^",
            ms=4,
            label="validation call accuracy",
        )
        right.set_ylim(-0.03, 1.05)  # keep points at 0 % and 100 % visible
        right.set_ylabel("call accuracy")
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, loc="upper right", fontsize=8)
    ax.set_title(title or "training curves")
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
