"""Frame-level metrics of anomaly detection and recognition, each defined in its docstring.

All of them are computed on the test frames of every video pooled together (docs/method.md,
Evaluation). The binary ranking metrics are written here in numpy (one sort, cumulative
counts at each distinct score) and checked against scikit-learn in
``tests/test_evaluate_metrics.py``. A metric that is undefined on the data given (ROC AUC
with one class present, AP without positives) is ``nan``, never an exception.

Inputs, by name:
    y       (F,) 0/1 frame labels (1 = anomalous frame)
    scores  (F,) frame scores, higher = more anomalous (p_anomaly)
    probs   (F, C) class probabilities, columns in ``class_names`` order (Normal included)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

NAN = float("nan")


@dataclass
class RankCounts:
    """Cumulative counts at each distinct score, from the highest score down.

    ``thresholds[i]`` is the i-th distinct score; ``tps[i]`` / ``fps[i]`` count the positive
    / negative frames with score >= ``thresholds[i]``.
    """
    thresholds: np.ndarray      # (K,) decreasing
    tps: np.ndarray             # (K,) int, increasing
    fps: np.ndarray             # (K,) int, increasing
    n_pos: int
    n_neg: int


def rank_counts(y, scores) -> RankCounts:
    y = np.asarray(y).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{len(y)} labels for {len(s)} scores")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.zeros(0, int)
    tps = np.cumsum(y)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return RankCounts(s[last_of_tie], tps, fps, int(y.sum()), int((~y).sum()))


def roc_curve(y, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points (fpr, tpr, thresholds) at every distinct score, starting at (0, 0) with
    threshold +inf. Frame t is called anomalous at threshold h when score_t >= h."""
    c = rank_counts(y, scores)
    fpr = np.r_[0.0, c.fps / c.n_neg] if c.n_neg else np.full(len(c.fps) + 1, NAN)
    tpr = np.r_[0.0, c.tps / c.n_pos] if c.n_pos else np.full(len(c.tps) + 1, NAN)
    return fpr, tpr, np.r_[np.inf, c.thresholds]


def roc_auc(y, scores) -> float:
    """ROC AUC: the area under the ROC curve of ``scores`` against ``y`` (trapezoids between
    the points at each distinct score), equal to the probability that a random anomalous
    frame scores above a random normal one, ties counting one half. nan when only one class
    is present."""
    c = rank_counts(y, scores)
    if c.n_pos == 0 or c.n_neg == 0:
        return NAN
    fpr, tpr, _ = roc_curve(y, scores)
    return float(np.trapezoid(tpr, fpr))


def pr_curve(y, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision-recall points (precision, recall, thresholds) at every distinct score, from
    the highest threshold down, preceded by the point (precision 1, recall 0) as
    scikit-learn's ``precision_recall_curve`` (there reversed) adds it."""
    c = rank_counts(y, scores)
    precision = c.tps / np.maximum(c.tps + c.fps, 1)
    recall = c.tps / c.n_pos if c.n_pos else np.full(len(c.tps), NAN)
    return np.r_[1.0, precision], np.r_[0.0, recall], np.r_[np.inf, c.thresholds]


def average_precision(y, scores) -> float:
    """AP, step-wise (scikit-learn's ``average_precision_score``): sum over distinct
    thresholds of (R_n - R_{n-1}) * P_n, precision weighted by the recall gained at each
    threshold, with no interpolation. nan when there is no anomalous frame."""
    precision, recall, _ = pr_curve(y, scores)
    if np.isnan(recall).any():
        return NAN
    return float(max(0.0, np.sum(np.diff(recall) * precision[1:])))


def ap_trapezoid(y, scores) -> float:
    """AP_trapezoid: the trapezoidal area under the precision-recall curve, i.e.
    ``sklearn.metrics.auc(recall, precision)`` on ``precision_recall_curve``, including the
    (recall 0, precision 1) point. Many papers report this number as "AP"; it linearly
    interpolates precision and is usually a little higher than the step-wise AP. nan when
    there is no anomalous frame."""
    precision, recall, _ = pr_curve(y, scores)
    if np.isnan(recall).any():
        return NAN
    return float(np.trapezoid(precision, recall))


def youden_threshold(y, scores) -> dict:
    """Youden threshold: the score h maximising J = TPR(h) - FPR(h) on the ROC curve (the
    highest such h on ties), with its TPR, FPR and J. Frames scoring >= h are called
    anomalous. All nan when only one class is present."""
    fpr, tpr, thr = roc_curve(y, scores)
    if np.isnan(fpr).any() or np.isnan(tpr).any():
        return {"threshold": NAN, "tpr": NAN, "fpr": NAN, "j": NAN}
    j = tpr - fpr
    i = int(np.argmax(j))
    return {"threshold": float(thr[i]), "tpr": float(tpr[i]), "fpr": float(fpr[i]),
            "j": float(j[i])}


def false_alarm_rate(scores_of_normal_frames, threshold: float = 0.5) -> float:
    """False alarm rate: the fraction of frames of NORMAL videos with score >= threshold
    (0.5 by convention). nan when there is no normal frame."""
    s = np.asarray(scores_of_normal_frames, dtype=np.float64).ravel()
    return float((s >= threshold).mean()) if len(s) else NAN


def class_table(frame_classes: list[set[str]] | np.ndarray, probs: np.ndarray,
                class_names: list[str], normal_class: str = "Normal") -> pd.DataFrame:
    """Per anomaly class c, one-vs-rest on column c of ``probs`` over all frames pooled:
    positives are the frames whose true classes include c. Columns: class_name,
    n_frames (positives), auc, ap, ap_trapezoid. The normal class is excluded; a class with
    no positive frame (absent from the data) gets a row with n_frames 0 and nan metrics.

    ``frame_classes`` is, per frame, the set of its true classes ({normal_class} outside
    anomalous intervals; several for multi-label videos) or a (F,) array of class names.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(class_names):
        raise ValueError(f"probs has shape {probs.shape}, expected (frames, {len(class_names)})")
    sets = [c if isinstance(c, (set, frozenset)) else {c} for c in frame_classes]
    rows = []
    for k, name in enumerate(class_names):
        if name == normal_class:
            continue
        y = np.fromiter((name in c for c in sets), dtype=bool, count=len(sets))
        present = bool(y.any())
        rows.append({"class_name": name, "n_frames": int(y.sum()),
                     "auc": roc_auc(y, probs[:, k]) if present else NAN,
                     "ap": average_precision(y, probs[:, k]) if present else NAN,
                     "ap_trapezoid": ap_trapezoid(y, probs[:, k]) if present else NAN})
    return pd.DataFrame(rows, columns=["class_name", "n_frames", "auc", "ap", "ap_trapezoid"])


def mean_over_present(table: pd.DataFrame, column: str) -> float:
    """mAUC / mAP: the mean of a per-class column over the classes present in the data
    (n_frames > 0), the normal class already excluded; nan when none is present."""
    present = table.loc[table["n_frames"] > 0, column].dropna()
    return float(present.mean()) if len(present) else NAN


def video_class_scores(probs: np.ndarray, class_names: list[str],
                       normal_class: str = "Normal") -> pd.Series:
    """Video-level class scores: for each anomaly class c, sum over the video's frames of
    P(c) = softmax(S)_c * p_anomaly, so frames count in proportion to how anomalous they
    are. The predicted video class is the top one."""
    probs = np.asarray(probs, dtype=np.float64)
    keep = [k for k, n in enumerate(class_names) if n != normal_class]
    return pd.Series(probs[:, keep].sum(axis=0), index=[class_names[k] for k in keep])


def top1_accuracy(true_classes: list[set[str]], predicted: list[str]) -> float:
    """Top-1 accuracy of the video-level class: the fraction of ABNORMAL videos whose
    predicted class (see :func:`video_class_scores`) is one of their true classes. Normal
    videos are left out: their errors are false alarms, measured by
    :func:`false_alarm_rate`. nan when there is no abnormal video."""
    if not len(true_classes):
        return NAN
    return float(np.mean([p in t for t, p in zip(true_classes, predicted)]))


def prob_column(class_name: str) -> str:
    """Name of the table column holding P(class_name) per frame."""
    return f"p_{class_name}"


def summarize(frames: pd.DataFrame, videos: pd.DataFrame, class_names: list[str],
              normal_class: str = "Normal", threshold: float = 0.5) -> tuple[dict, pd.DataFrame]:
    """Every metric of the suite on a scored split: (metrics dict, per-class table).

    ``frames``: the per-frame table (video_id, p_anomaly, one ``p_<class>`` column per
    class, label 0/1). ``videos``: one row per video with video_id, label (0/1) and
    class_names_all (list of its classes; [normal_class] for a normal video). Keys:
    auc, ap, ap_trapezoid, auc_abnormal_videos, mauc, map, video_top1_accuracy,
    false_alarm_rate (at ``threshold``), youden_threshold (+ its tpr/fpr), and counts.
    """
    y = frames["label"].to_numpy(dtype=np.int8)
    s = frames["p_anomaly"].to_numpy(dtype=np.float64)
    probs = frames[[prob_column(c) for c in class_names]].to_numpy(dtype=np.float64)
    info = videos.set_index("video_id")
    abnormal_video = frames["video_id"].map(info["label"]).to_numpy(dtype=np.int8) == 1
    classes_of = {vid: set(c) for vid, c in info["class_names_all"].items()}
    frame_classes = [classes_of[v] if lab else {normal_class}
                     for v, lab in zip(frames["video_id"], y)]

    table = class_table(frame_classes, probs, class_names, normal_class)
    true_sets, predicted, per_class_hits = [], [], {}
    for vid, idx in frames.groupby("video_id", sort=False).indices.items():
        if info.at[vid, "label"] != 1:
            continue
        pred = video_class_scores(probs[idx], class_names, normal_class).idxmax()
        true_sets.append(classes_of[vid])
        predicted.append(pred)
        for c in classes_of[vid]:
            per_class_hits.setdefault(c, []).append(pred in classes_of[vid])
    table["n_videos"] = [len(per_class_hits.get(c, [])) for c in table["class_name"]]
    table["video_top1_accuracy"] = [float(np.mean(per_class_hits[c])) if c in per_class_hits
                                    else NAN for c in table["class_name"]]
    youden = youden_threshold(y, s)
    metrics = {
        "n_videos": int(len(videos)), "n_abnormal_videos": int((videos["label"] == 1).sum()),
        "n_frames": int(len(frames)), "n_anomalous_frames": int(y.sum()),
        "auc": roc_auc(y, s),
        "ap": average_precision(y, s),
        "ap_trapezoid": ap_trapezoid(y, s),
        "auc_abnormal_videos": roc_auc(y[abnormal_video], s[abnormal_video]),
        "mauc": mean_over_present(table, "auc"),
        "map": mean_over_present(table, "ap"),
        "video_top1_accuracy": top1_accuracy(true_sets, predicted),
        "false_alarm_rate": false_alarm_rate(s[~abnormal_video], threshold),
        "false_alarm_threshold": threshold,
        "youden_threshold": youden["threshold"], "youden_tpr": youden["tpr"],
        "youden_fpr": youden["fpr"],
    }
    return metrics, table
