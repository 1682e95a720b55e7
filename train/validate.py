"""Validation during training: frame AUC, AP and mAUC on the validation videos (sklearn).

Row-level (one label per stored row, i.e. per stride-th native frame); the full metric
suite on native frames lives in ``evaluate/``. Labels: a row is anomalous when its native
frame lies in an annotated interval. Validation videos carved from the training split have
no intervals; then every row of an abnormal video counts as anomalous (video-level labels
repeated to frames), an approximation whose metrics are named with ``_videolabel``.

``video_auc`` needs no intervals: ROC AUC of each video's highest p(anomaly) against its
video-level label. On synthetic data it tracked the true frame AUC where the
``_videolabel`` frame AUC did not (it penalises a model that keeps the normal parts of
abnormal videos low), so ``select_metric=auto`` selects on it when intervals are missing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from features.store import frame_labels

from .inference import predict_videos


def uses_video_labels(meta: pd.DataFrame, normal_class: str) -> bool:
    """True when some abnormal video lacks intervals (then all use video-level labels)."""
    abnormal = meta[meta["class_name"] != normal_class]
    return bool(len(abnormal)) and any(len(iv) == 0 for iv in abnormal["intervals"])


def row_labels(row, frame_index: np.ndarray, video_level: bool, normal_class: str) -> np.ndarray:
    """0/1 per stored row of one video."""
    if row.class_name == normal_class:
        return np.zeros(len(frame_index), dtype=np.int8)
    if video_level:
        return np.ones(len(frame_index), dtype=np.int8)
    return frame_labels(int(row.n_frames), row.intervals)[frame_index]


def metric_suffix(video_level: bool) -> str:
    return "_videolabel" if video_level else ""


def score_split(model, source, meta: pd.DataFrame, frame_index: dict, class_names: list[str],
                normal_class: str, device=None) -> dict[str, float]:
    """Metrics of ``model`` (eval mode) on the videos of ``meta`` (rows of store.metadata()).

    ``source.video(i)`` returns video i's (T, D) rows, in ``meta`` order; ``frame_index``
    maps video_id -> its native frame index per row. Keys: auc, ap, mauc, each with the
    ``_videolabel`` suffix when video-level labels were used, and video_auc; NaN when
    undefined.
    """
    video_level = uses_video_labels(meta, normal_class)
    ys, ss, ps, cls, video_y, video_max = [], [], [], [], [], []
    outputs = predict_videos(model, (source.video(i) for i in range(len(meta))), device)
    for row, out in zip(meta.itertuples(index=False), outputs):
        y = row_labels(row, frame_index[row.video_id], video_level, normal_class)
        ys.append(y)
        ss.append(out["p_anomaly"])
        ps.append(out["class_probs"])
        cls.append(np.full(len(y), class_names.index(row.class_name)))
        video_y.append(int(row.class_name != normal_class))
        video_max.append(float(out["p_anomaly"].max()))
    y, s, p, c = (np.concatenate(a) for a in (ys, ss, ps, cls))
    suffix = metric_suffix(video_level)
    metrics = {f"auc{suffix}": np.nan, f"ap{suffix}": np.nan, f"mauc{suffix}": np.nan,
               "video_auc": np.nan}
    if 0 < sum(video_y) < len(video_y):
        metrics["video_auc"] = float(roc_auc_score(video_y, video_max))
    if 0 < y.sum() < len(y):
        metrics[f"auc{suffix}"] = float(roc_auc_score(y, s))
        metrics[f"ap{suffix}"] = float(average_precision_score(y, s))
    per_class = []
    for k, name in enumerate(class_names):
        if name == normal_class:
            continue
        positive = (y == 1) & (c == k)
        if 0 < positive.sum() < len(y):
            per_class.append(roc_auc_score(positive, p[:, k]))
    if per_class:
        metrics[f"mauc{suffix}"] = float(np.mean(per_class))
    return metrics
