"""The numpy ranking metrics scoring used before features/metrics.py switched to
scikit-learn's, kept as the baseline of bench/metrics.py: one stable sort, cumulative
counts at each distinct score, ROC AUC by trapezoids, step-wise AP."""
from __future__ import annotations

import numpy as np

NAN = float("nan")


def rank_counts(y, scores):
    """(thresholds, tps, fps, n_pos, n_neg) at each distinct score, highest first."""
    y = np.asarray(y).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return s[last_of_tie], tps, fps, int(y.sum()), int((~y).sum())


def roc_auc(y, scores) -> float:
    _, tps, fps, n_pos, n_neg = rank_counts(y, scores)
    if n_pos == 0 or n_neg == 0:
        return NAN
    return float(np.trapezoid(np.r_[0.0, tps / n_pos], np.r_[0.0, fps / n_neg]))


def average_precision(y, scores) -> float:
    _, tps, fps, n_pos, _ = rank_counts(y, scores)
    if n_pos == 0:
        return NAN
    recall = np.r_[0.0, tps / n_pos]
    precision = tps / np.maximum(tps + fps, 1)
    return float(max(0.0, np.sum(np.diff(recall) * precision)))


def ap_trapezoid(y, scores) -> float:
    _, tps, fps, n_pos, _ = rank_counts(y, scores)
    if n_pos == 0:
        return NAN
    return float(np.trapezoid(np.r_[1.0, tps / np.maximum(tps + fps, 1)],
                              np.r_[0.0, tps / n_pos]))
