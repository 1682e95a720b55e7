"""The loss-curve PNG of a run (and the validation metric on a second axis)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.safe_write import atomic_write


def plot_losses(history: pd.DataFrame, step_losses: list[float], path: Path,
                val_column: str) -> None:
    """Training loss per step and per epoch, and ``val_column`` per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    steps = np.arange(1, len(step_losses) + 1)
    ax.plot(steps, step_losses, color="tab:blue", alpha=0.3, lw=0.8, label="loss per step")
    if len(history):
        ax.plot(history["step"], history["loss"], color="tab:blue", marker="o", ms=3,
                label="loss, epoch mean")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (sum of the 7 terms)")
    handles, labels = ax.get_legend_handles_labels()
    if val_column in history and history[val_column].notna().any():
        twin = ax.twinx()
        v = history.dropna(subset=[val_column])
        twin.plot(v["step"], v[val_column], color="tab:red", marker="s", ms=3, label=val_column)
        twin.set_ylabel(val_column)
        twin.set_ylim(0, 1)
        h2, l2 = twin.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper right", fontsize=8)
    ax.set_title(path.parent.name)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)
