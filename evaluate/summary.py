"""The metric suite of a scored split: every definition of ``features/metrics.py`` (the one
the validation during training uses too) applied to the frames of every video pooled
together (docs/method.md, Evaluation), and the per-class table.

Inputs, by name:
    frames  the per-frame table: video_id, p_anomaly, one ``p_<class>`` column per class,
            label 0/1
    videos  one row per video: video_id, label 0/1, class_names_all
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.metrics import (NAN, THRESHOLD, ap_trapezoid, average_precision, class_table,
                              class_targets, false_alarm_rate, mean_over_present, roc_auc,
                              top1_accuracy, video_class_scores, youden_threshold)
from features.schema import NORMAL_CLASS


def prob_column(class_name: str) -> str:
    """Name of the table column holding P(class_name) per frame."""
    return f"p_{class_name}"


def summarize(frames: pd.DataFrame, videos: pd.DataFrame, class_names: list[str],
              normal_class: str = NORMAL_CLASS, threshold: float = THRESHOLD) -> tuple[dict, pd.DataFrame]:
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
    targets = class_targets(y, frames["video_id"], classes_of, class_names, normal_class)

    table = class_table(targets, probs, class_names, normal_class)
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
