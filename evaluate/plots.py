"""PNG figures (matplotlib, Agg backend, no display needed).

* one per scored video: the p(anomaly) curve over native frames, ground-truth intervals
  shaded, the threshold line, found intervals marked, and a bar chart of the mean class
  probabilities over the anomalous part (the annotated intervals when known, else the
  frames at or above the threshold, else the whole video);
* one summary: ROC and precision-recall curves of all frames pooled.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from features import metrics as M  # noqa: E402
from features.metrics import THRESHOLD  # noqa: E402
from features.schema import NORMAL_CLASS  # noqa: E402

CURVE = "#1f4e9c"
TRUTH = "#f2b134"


def class_colors(class_names: list[str], normal_class: str = NORMAL_CLASS) -> dict[str, str]:
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    colors, k = {}, 0
    for name in class_names:
        if name == normal_class:
            colors[name] = "#9a9a9a"
        else:
            colors[name] = matplotlib.colors.to_hex(cmap(k % cmap.N))
            k += 1
    return colors


def anomalous_part(p_anomaly: np.ndarray, labels: np.ndarray | None,
                   threshold: float) -> tuple[np.ndarray, str]:
    """(boolean frame mask, description) of the part the class bar chart summarises."""
    if labels is not None and np.asarray(labels).sum() > 0:
        return np.asarray(labels) == 1, "annotated anomalous frames"
    above = np.asarray(p_anomaly) >= threshold
    if above.any():
        return above, f"frames with p(anomaly) >= {threshold:.2f}"
    return np.ones(len(p_anomaly), bool), "whole video (no frame above threshold)"


def draw_score_curve(ax, p_anomaly, fps, truth_intervals=(), threshold=THRESHOLD, found=(),
                     colors=None) -> None:
    """The score curve on ``ax`` (x: native frame)."""
    frames = np.arange(len(p_anomaly))
    for k, (start, end) in enumerate(truth_intervals):
        ax.axvspan(start, end + 1, color=TRUTH, alpha=0.35, lw=0,
                   label="ground truth" if k == 0 else None)
    ax.plot(frames, p_anomaly, color=CURVE, lw=1.4, label="p(anomaly)")
    ax.axhline(threshold, color="#c0392b", ls="--", lw=1, label=f"threshold {threshold:.2f}")
    for k, iv in enumerate(found):
        ax.plot([iv.start_frame, iv.end_frame + 1], [1.03, 1.03], lw=4, solid_capstyle="butt",
                color=(colors or {}).get(iv.class_name, "k"), clip_on=False,
                label="found (colour: class)" if k == 0 else None)
    ax.set_xlim(0, max(len(p_anomaly), 1))
    ax.set_ylim(0, 1.06)
    ax.set_xlabel(f"frame ({fps:g} fps)" if fps else "frame")
    ax.set_ylabel("p(anomaly)")
    ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
    ax.grid(alpha=0.25)


def video_figure(video_id: str, p_anomaly: np.ndarray, class_probs: np.ndarray,
                 class_names: list[str], fps: float, out: Path, truth_intervals=(),
                 labels: np.ndarray | None = None, class_name: str | None = None,
                 threshold: float = THRESHOLD, found=(), normal_class: str = NORMAL_CLASS) -> Path:
    """Write the per-video PNG; p_anomaly (F,), class_probs (F, C) on native frames."""
    colors = class_colors(class_names, normal_class)
    fig = plt.figure(figsize=(12, 3.6))
    grid = fig.add_gridspec(1, 4, wspace=0.45)
    ax = fig.add_subplot(grid[0, :3])
    draw_score_curve(ax, p_anomaly, fps, truth_intervals, threshold, found, colors)
    truth = f"  [truth: {class_name}]" if class_name else ""
    ax.set_title(f"{video_id}{truth}", fontsize=10, loc="left")

    bars = fig.add_subplot(grid[0, 3])
    mask, what = anomalous_part(p_anomaly, labels, threshold)
    mean = np.asarray(class_probs)[mask].mean(axis=0)                         # (C,)
    ys = np.arange(len(class_names))
    bars.barh(ys, mean, color=[colors[c] for c in class_names])
    bars.set_yticks(ys, [c.replace("_", " ") for c in class_names], fontsize=8)
    bars.invert_yaxis()
    bars.set_xlim(0, 1)
    bars.set_xlabel("mean P(class)", fontsize=8)
    bars.set_title(f"over {what}", fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return out


def _thin(*arrays, keep: int = 20000):
    """Every n-th point of long curves (a million-point ROC draws no better than 20k)."""
    n = len(arrays[0])
    if n <= keep:
        return arrays
    idx = np.unique(np.r_[np.linspace(0, n - 1, keep).astype(int), n - 1])
    return tuple(a[idx] for a in arrays)


def summary_figure(y: np.ndarray, scores: np.ndarray, metrics: dict, out: Path,
                   title: str = "") -> Path:
    """ROC and precision-recall curves of all frames pooled, with AUC / AP in the legends."""
    fpr, tpr, _ = M.roc_curve(y, scores)
    precision, recall, _ = M.pr_curve(y, scores)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.4))
    a.plot(*_thin(fpr, tpr), color=CURVE, lw=1.6, label=f"AUC {metrics.get('auc', np.nan):.4f}")
    a.plot([0, 1], [0, 1], color="#999", ls=":", lw=1)
    if np.isfinite(metrics.get("youden_fpr", np.nan)):
        a.scatter([metrics["youden_fpr"]], [metrics["youden_tpr"]], color="#c0392b", zorder=3,
                  label=f"Youden threshold {metrics['youden_threshold']:.3f}")
    a.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (frames)",
          xlim=(0, 1), ylim=(0, 1.01))
    a.legend(loc="lower right", fontsize=9)
    r, p = _thin(recall, precision)
    b.step(r, p, where="post", color=CURVE, lw=1.6,
           label=f"AP {metrics.get('ap', np.nan):.4f} (step-wise)\n"
                 f"AP_trapezoid {metrics.get('ap_trapezoid', np.nan):.4f}")
    b.axhline(float(np.mean(y)) if len(y) else 0, color="#999", ls=":", lw=1,
              label="chance (anomalous fraction)")
    b.set(xlabel="recall", ylabel="precision", title="precision-recall (frames)",
          xlim=(0, 1), ylim=(0, 1.01))
    b.legend(loc="lower left", fontsize=9)
    for ax in (a, b):
        ax.grid(alpha=0.25)
    if title:
        fig.suptitle(title, fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out
