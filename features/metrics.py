"""The metric definitions, once: validation during training (``train/validate.py``) and
scoring (``evaluate/summary.py``) both call these functions, so the checkpoint is chosen
with the definition it is reported with.

Every binary ranking metric is scikit-learn's (``roc_auc_score``,
``average_precision_score``, ``roc_curve``, ``precision_recall_curve``), wrapped so that a
metric undefined on the data given (ROC AUC with one class present, AP without positives)
is ``nan``, never an exception or a warning. ``bench/metrics.py`` times these against the
numpy implementation they replaced at UCF-Crime scale.

Inputs, by name:
    y        (F,) 0/1 frame labels (1 = anomalous frame)
    scores   (F,) frame scores, higher = more anomalous (p_anomaly)
    probs    (F, C) class probabilities, columns in ``class_names`` order (Normal included)
    targets  (F, C) bool, one-vs-rest positives per class (see :func:`class_targets`)
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from .schema import NORMAL_CLASS

NAN = float("nan")
THRESHOLD = 0.5       # a frame with p(anomaly) >= THRESHOLD counts as anomalous (by convention)


def _binary(y, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{len(y)} labels for {len(s)} scores")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return y, s


def _both_present(y: np.ndarray) -> bool:
    return bool(y.any()) and not bool(y.all())


def roc_curve(y, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points (fpr, tpr, thresholds) at every distinct score, starting at (0, 0) with
    threshold +inf. Frame t is called anomalous at threshold h when score_t >= h. fpr (tpr)
    is all nan when there is no normal (anomalous) frame."""
    y, s = _binary(y, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # one class present: nan, said above
        fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    return fpr, tpr, thr


def roc_auc(y, scores) -> float:
    """ROC AUC: the area under the ROC curve of ``scores`` against ``y``, equal to the
    probability that a random anomalous frame scores above a random normal one, ties
    counting one half. nan when only one class is present."""
    y, s = _binary(y, scores)
    return float(skm.roc_auc_score(y, s)) if _both_present(y) else NAN


def pr_curve(y, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision-recall points (precision, recall, thresholds) from the highest threshold
    down, starting at the point (precision 1, recall 0) with threshold +inf: scikit-learn's
    ``precision_recall_curve`` reversed (it stops at the first threshold of full recall).
    recall is nan when there is no anomalous frame."""
    y, s = _binary(y, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision, recall, thr = skm.precision_recall_curve(y, s)
    if not y.any():
        recall = np.full(len(recall), NAN)          # scikit-learn says 1 here
    return precision[::-1], recall[::-1], np.r_[np.inf, thr[::-1]]


def average_precision(y, scores) -> float:
    """AP, step-wise (scikit-learn's ``average_precision_score``): sum over distinct
    thresholds of (R_n - R_{n-1}) * P_n, precision weighted by the recall gained at each
    threshold, with no interpolation. nan when there is no anomalous frame."""
    y, s = _binary(y, scores)
    return float(skm.average_precision_score(y, s)) if y.any() else NAN


def ap_trapezoid(y, scores) -> float:
    """AP_trapezoid: the trapezoidal area under the precision-recall curve, i.e.
    ``sklearn.metrics.auc(recall, precision)`` on ``precision_recall_curve``, including the
    (recall 0, precision 1) point. Many papers report this number as "AP"; it linearly
    interpolates precision and is usually a little higher than the step-wise AP. nan when
    there is no anomalous frame."""
    precision, recall, _ = pr_curve(y, scores)
    if np.isnan(recall).any():
        return NAN
    return float(skm.auc(recall, precision))


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


def json_safe(value):
    """``value`` ready for standard JSON, recursively: an undefined metric (NaN, inf) becomes
    null (None), numpy scalars Python numbers. What every JSON file of this tool holds."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def false_alarm_rate(scores_of_normal_frames, threshold: float = THRESHOLD) -> float:
    """False alarm rate: the fraction of frames of NORMAL videos with score >= threshold
    (:data:`THRESHOLD` by convention). nan when there is no normal frame."""
    s = np.asarray(scores_of_normal_frames, dtype=np.float64).ravel()
    return float((s >= threshold).mean()) if len(s) else NAN


def video_auc(video_labels, video_frame_scores) -> float:
    """Video-level AUC: ROC AUC of each video's highest frame score against its 0/1
    video label (needs no intervals). nan without both normal and abnormal videos."""
    return roc_auc(video_labels, [float(np.max(s)) for s in video_frame_scores])


def class_targets(y, video_ids, classes_of: Mapping[str, Sequence[str]],
                  class_names: list[str], normal_class: str = NORMAL_CLASS) -> np.ndarray:
    """(F, C) one-vs-rest positives of the recognition metrics, multi-label.

    Frame f is a positive of class c when it is anomalous (``y[f]`` = 1) and c is one of its
    video's classes (``classes_of[video_ids[f]]``, e.g. the store's ``class_names_all``).
    Intervals carry no class of their own, so an anomalous frame of a video labelled
    {Shooting, Explosion} is a positive of both. The normal column holds the normal frames.
    """
    y = np.asarray(y).astype(bool).ravel()
    codes, videos = pd.factorize(pd.Series(video_ids), sort=False)
    per_video = np.zeros((len(videos), len(class_names)), dtype=bool)
    column = {name: k for k, name in enumerate(class_names)}
    for i, vid in enumerate(videos):
        for name in classes_of[vid]:
            if name in column:
                per_video[i, column[name]] = True
    targets = per_video[codes] & y[:, None]
    if normal_class in column:
        targets[:, column[normal_class]] = ~y
    return targets


def _as_targets(frame_classes, class_names: list[str]) -> np.ndarray:
    """A (F, C) bool array as it is, or per frame a class name / a set of class names."""
    if isinstance(frame_classes, np.ndarray) and frame_classes.ndim == 2 \
            and frame_classes.dtype == bool:
        return frame_classes
    sets = [c if isinstance(c, (set, frozenset)) else {c} for c in frame_classes]
    return np.array([[name in c for name in class_names] for c in sets], dtype=bool
                    ).reshape(len(sets), len(class_names))


PER_CLASS = {"auc": roc_auc, "ap": average_precision, "ap_trapezoid": ap_trapezoid}


def class_table(frame_classes, probs: np.ndarray, class_names: list[str],
                normal_class: str = NORMAL_CLASS, metrics=tuple(PER_CLASS)) -> pd.DataFrame:
    """Per anomaly class c, one-vs-rest on column c of ``probs`` over all frames pooled.

    Columns: class_name, n_frames (positives) and ``metrics`` (names of :data:`PER_CLASS`;
    validation asks for auc only). The normal class is excluded; a class with no positive
    frame (absent from the data) gets a row with n_frames 0 and nan metrics.

    ``frame_classes``: the (F, C) positives of :func:`class_targets`, or per frame the set
    of its true classes ({normal_class} outside anomalous intervals) or its class name.

    Why multi-label: a frame is a positive of EVERY class of its video, and a negative of
    each class it does not belong to (normal frames and other classes' frames alike). The
    single-label alternative (positives only for the video's first class, the definition
    validation used before) counts a correct second class of an XD-Violence video as a
    false alarm of that class, so a model that recognises both classes scores lower than
    one that ignores the second; on single-label data the two agree exactly.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(class_names):
        raise ValueError(f"probs has shape {probs.shape}, expected (frames, {len(class_names)})")
    targets = _as_targets(frame_classes, class_names)
    rows = []
    for k, name in enumerate(class_names):
        if name == normal_class:
            continue
        y = targets[:, k]
        present = bool(y.any())
        rows.append({"class_name": name, "n_frames": int(y.sum()),
                     **{m: PER_CLASS[m](y, probs[:, k]) if present else NAN for m in metrics}})
    return pd.DataFrame(rows, columns=["class_name", "n_frames", *metrics])


def mean_over_present(table: pd.DataFrame, column: str) -> float:
    """mAUC / mAP: the mean of a per-class column over the classes present in the data
    (n_frames > 0; a class whose every frame is a positive has an undefined AUC and is left
    out too), the normal class already excluded; nan when none is left."""
    present = table.loc[table["n_frames"] > 0, column].dropna()
    return float(present.mean()) if len(present) else NAN


def video_class_scores(probs: np.ndarray, class_names: list[str],
                       normal_class: str = NORMAL_CLASS) -> pd.Series:
    """Video-level class scores: for each anomaly class c, sum over the video's frames of
    P(c) = softmax(S)_c * p_anomaly, so frames count in proportion to how anomalous they
    are. The predicted video class is the top one."""
    probs = np.asarray(probs, dtype=np.float64)
    keep = [k for k, n in enumerate(class_names) if n != normal_class]
    return pd.Series(probs[:, keep].sum(axis=0), index=[class_names[k] for k in keep])


def top1_accuracy(true_classes: list[set[str]], predicted: list[str]) -> float:
    """Top-1 accuracy of the video-level class: the fraction of ABNORMAL videos whose
    predicted class (see :func:`video_class_scores`) is one of their true classes (all of a
    multi-label video's). Normal videos are left out: their errors are false alarms,
    measured by :func:`false_alarm_rate`. nan when there is no abnormal video."""
    if not len(true_classes):
        return NAN
    return float(np.mean([p in t for t, p in zip(true_classes, predicted)]))
