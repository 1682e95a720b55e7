"""Validation during training: frame AUC, AP and mAUC on the validation videos, with the
definitions of ``features/metrics.py`` (the ones scoring reports).

Row-level (one label per stored row, i.e. per stride-th native frame); the full metric
suite on native frames lives in ``evaluate/``. Labels: a row is anomalous when its native
frame lies in an annotated interval. Validation videos carved from the training split have
no intervals; then every row of an abnormal video counts as anomalous (video-level labels
repeated to frames), an approximation whose metrics are named with ``_videolabel``.

``video_auc`` needs no intervals: ROC AUC of each video's highest p(anomaly) against its
video-level label. On synthetic data it tracked the true frame AUC where the
``_videolabel`` frame AUC did not (it penalises a model that keeps the normal parts of
abnormal videos low), so ``select_metric=auto`` selects on it when intervals are missing.

Recognition: ``video_top1_accuracy``, the share of abnormal videos whose top class (the
definition of ``features.metrics``) is one of their classes. Whether the MIL selection is
informative, i.e. whether the segments training learns from are the anomalous ones:
``selector_auc`` is the frame AUC of max_c S (what picks a normal video's top-k), and
``selector_video_auc`` the mean over classes c of the AUC of a video's highest
segment-long mean of S_c, class-c videos against normal ones (what picks an abnormal
video's top-k; needs no intervals). Both sit near 0.5 when CLIP's text does not point at
the anomalies.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from features.metrics import (average_precision, class_table, class_targets,
                              mean_over_present, roc_auc, top1_accuracy, video_auc,
                              video_class_scores)
from features.store import frame_labels

from .model import predict_videos


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


def validation_metrics(model, source, meta: pd.DataFrame, frame_index: dict,
                       class_names: list[str], normal_class: str, device=None) -> dict[str, float]:
    """Metrics of ``model`` (eval mode) on the videos of ``meta`` (rows of store.metadata()).

    ``source.video(i)`` returns video i's (T, D) rows, in ``meta`` order; ``frame_index``
    maps video_id -> its native frame index per row. Keys: auc, ap, mauc, selector_auc,
    each with the ``_videolabel`` suffix when video-level labels were used, and video_auc,
    video_top1_accuracy, selector_video_auc; NaN when undefined. mAUC is multi-label: an
    anomalous row is a positive of every class in its video's ``class_names_all``.
    """
    video_level = uses_video_labels(meta, normal_class)
    ys, ss, ps, sel, vids, video_y, video_scores = [], [], [], [], [], [], []
    peaks, truth, predicted = [], [], []
    classes_of = {row.video_id: list(getattr(row, "class_names_all", None) or [row.class_name])
                  for row in meta.itertuples(index=False)}
    outputs = predict_videos(model, (source.video(i) for i in range(len(meta))), device)
    for row, out in zip(meta.itertuples(index=False), outputs):
        y = row_labels(row, frame_index[row.video_id], video_level, normal_class)
        ys.append(y)
        ss.append(out["p_anomaly"])
        ps.append(out["class_probs"])
        sel.append(out["S"].max(-1))
        vids.append(np.full(len(y), row.video_id, dtype=object))
        video_y.append(int(row.class_name != normal_class))
        video_scores.append(out["p_anomaly"])
        peaks.append(segment_peaks(out["S"], model.seg_length))
        if row.class_name != normal_class:
            truth.append(set(classes_of[row.video_id]))
            predicted.append(video_class_scores(out["class_probs"], class_names,
                                                normal_class).idxmax())
    y, s, p, v, m = (np.concatenate(a) for a in (ys, ss, ps, vids, sel))
    targets = class_targets(y, v, classes_of, class_names, normal_class)
    suffix = metric_suffix(video_level)
    return {f"auc{suffix}": roc_auc(y, s), f"ap{suffix}": average_precision(y, s),
            f"mauc{suffix}": mean_over_present(
                class_table(targets, p, class_names, normal_class, ("auc",)), "auc"),
            "video_auc": video_auc(video_y, video_scores),
            "video_top1_accuracy": top1_accuracy(truth, predicted),
            f"selector_auc{suffix}": roc_auc(y, m),
            "selector_video_auc": selector_video_auc(peaks, list(meta["class_name"]),
                                                     class_names, normal_class)}


def segment_peaks(S: np.ndarray, seg_length: int) -> np.ndarray:
    """(T, C-1) selector output of one video -> (C-1,) highest mean of S over ``seg_length``
    consecutive rows (a training segment), per class."""
    width = min(seg_length, len(S))
    csum = np.concatenate([np.zeros((1, S.shape[1])), np.cumsum(S, axis=0, dtype=np.float64)])
    return ((csum[width:] - csum[:-width]) / width).max(axis=0)


def selector_video_auc(peaks: list[np.ndarray], video_classes: list[str],
                       class_names: list[str], normal_class: str) -> float:
    """Mean over the anomaly classes present of the AUC of S_c's segment peak, class-c
    videos against normal videos; NaN without both."""
    columns = [c for c in class_names if c != normal_class]           # S column order
    normal = [p for p, c in zip(peaks, video_classes) if c == normal_class]
    aucs = []
    for j, name in enumerate(columns):
        own = [p[j] for p, c in zip(peaks, video_classes) if c == name]
        if own and normal:
            labels = [1] * len(own) + [0] * len(normal)
            aucs.append(roc_auc(labels, own + [p[j] for p in normal]))
    return float(np.mean(aucs)) if aucs else np.nan
