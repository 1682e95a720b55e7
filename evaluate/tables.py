"""The outputs people open: the per-frame scores table, metrics.json, the printed tables.

Frame table, one row per native frame of every scored video::

    video_id   str      the store's video id
    frame      int64    native frame number, 0-based
    time_s     float64  frame time in seconds (stored timestamps at stride 1, else frame / fps)
    p_anomaly  float32  s = p(anomaly)
    pred_class str      the class with the highest P for this frame (Normal when 1 - s wins)
    p_<class>  float32  P(class) for every class, Normal included (they sum to 1)
    label      Int8     ground truth 0/1 when known (inside an annotated interval), else empty
    class_name str      the video's class when labelled, else empty
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from features.metrics import THRESHOLD, json_safe
from features.safe_write import atomic_write

from .summary import prob_column

TABLE = "frame_scores.parquet"
METRICS = "metrics.json"
PER_CLASS = "per_class.csv"
VIDEOS = "videos.csv"


def frame_table(video_id: str, p_anomaly: np.ndarray, class_probs: np.ndarray,
                class_names: list[str], time_s: np.ndarray, labels: np.ndarray | None,
                class_name: str | None) -> pd.DataFrame:
    """The rows of one video; p_anomaly (F,), class_probs (F, C), time_s (F,), labels (F,)."""
    n = len(p_anomaly)
    table = {"video_id": np.full(n, video_id, dtype=object),
             "frame": np.arange(n, dtype=np.int64),
             "time_s": np.asarray(time_s, dtype=np.float64),
             "p_anomaly": np.asarray(p_anomaly, dtype=np.float32),
             "pred_class": np.asarray(class_names, dtype=object)[np.argmax(class_probs, axis=1)]}
    for k, name in enumerate(class_names):
        table[prob_column(name)] = class_probs[:, k].astype(np.float32)
    table["label"] = pd.array(labels if labels is not None else [None] * n, dtype="Int8")
    table["class_name"] = np.full(n, class_name, dtype=object)
    return pd.DataFrame(table)


def frame_times(n_frames: int, fps: float, stride: int, timestamps_ms: np.ndarray) -> np.ndarray:
    """(n_frames,) seconds: the stored presentation times when every frame has one, else
    frame / fps."""
    ts = np.asarray(timestamps_ms, dtype=np.float64)
    if int(stride) == 1 and len(ts) == n_frames and np.isfinite(ts).all():
        return ts / 1000.0
    return np.arange(n_frames) / (float(fps) if fps and fps > 0 else 1.0)


def write_table(frames: pd.DataFrame, out_dir: Path, csv: bool = False) -> list[Path]:
    """Write ``frame_scores.parquet`` (and ``.csv`` when asked) atomically; return the paths."""
    written = [atomic_write(out_dir / TABLE, lambda tmp: frames.to_parquet(tmp, index=False))]
    if csv:
        written.append(atomic_write(out_dir / TABLE.replace(".parquet", ".csv"), lambda tmp:
                                    frames.to_csv(tmp, index=False, float_format="%.6g")))
    return written


def write_metrics(path: Path, body: dict) -> Path:
    """metrics.json (nan written as null)."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(json_safe(body), indent=2)
                                                         + "\n"))


METRIC_LINES = [
    ("auc", "AUC (frame, all test frames)"),
    ("ap", "AP (step-wise, sklearn)"),
    ("ap_trapezoid", "AP_trapezoid (area under PR)"),
    ("auc_abnormal_videos", "AUC on abnormal videos only"),
    ("mauc", "mAUC (anomaly classes)"),
    ("map", "mAP (anomaly classes)"),
    ("video_top1_accuracy", "top-1 video class accuracy"),
    ("false_alarm_rate", f"false alarm rate @ {THRESHOLD:g}"),
    ("youden_threshold", "Youden threshold"),
]


def _num(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.4f}"


def format_metrics(metrics: dict, per_class: pd.DataFrame) -> str:
    """The printed metrics: one line per metric, then the per-class table."""
    lines = [f"{metrics['n_videos']} videos ({metrics['n_abnormal_videos']} abnormal), "
             f"{metrics['n_frames']:,} frames ({metrics['n_anomalous_frames']:,} anomalous)"]
    lines += [f"  {label:<32} {_num(metrics.get(key))}" for key, label in METRIC_LINES]
    if len(per_class):
        shown = per_class.copy()
        for col in ("auc", "ap", "ap_trapezoid", "video_top1_accuracy"):
            shown[col] = shown[col].map(_num)
        lines += ["", "per anomaly class (one-vs-rest on P(class), all frames pooled):",
                  shown.to_string(index=False)]
    return "\n".join(lines)
