"""Temporal detection mAP of a scored split, in the field's two protocols (docs/scoring.md).

Why here and not in features/metrics.py: only scoring uses it (validation during training
picks checkpoints on frame metrics), and it needs proposals, a file format and per-video
grouping that the frame metrics do not.

``vadclip``: what VadCLIP's ``getDetectionMAP`` (src/utils/ucf_detectionMAP.py and
xd_detectionMAP.py of nwpu-zxr/VadCLIP) returns, divided by 100, computed vectorised with
the same floating-point operations in the same order (tests/test_detection.py checks it
against a loop transcription on random data). Its rules, all kept:

- input per video: (F, C) class probabilities, column 0 = Normal, then the anomaly classes;
- c_score = mean of the top floor(F/16) values of each column (a video of < 16 frames has
  none: all its columns are zeroed), columns with c_score <= 0 zeroed;
- per video and column a relative threshold max - 0.6 (max - min), frames strictly above it;
  runs of >= 2 frames are segments [start, end_exclusive), scored run max + 0.7 c_score;
- NMS at 0.6 on the segments of one video: they are disjoint runs, so it keeps them all
  (its only effect is their order by score);
- per class, segments sorted by score, each matched greedily to the unmatched ground-truth
  interval of its video with the highest IoU >= the threshold (first one on ties), IoU on
  integer frame ranges; AP = sum of precision at each true positive / number of intervals;
  0 for a class without intervals (the Normal column of UCF-Crime);
- if a class has no segment at all, that IoU's mAP is 0 (the reference returns early);
- mAP = mean over all C columns, Normal included.

``activitynet``: ActivityNet's detection evaluation (Evaluation/eval_detection.py of
activitynet/ActivityNet) on the same proposals, anomaly classes only, in seconds
([first_frame / fps, (last_frame + 1) / fps]): predictions sorted by score, each matched to
the highest-IoU ground truth not yet matched at that IoU threshold, VOC interpolated AP, mean
over the anomaly classes with at least one interval in the split.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IOUS = (0.1, 0.2, 0.3, 0.4, 0.5)
RELATIVE = 0.6          # threshold = max - RELATIVE * (max - min), per video and class
MIN_RUN = 2             # frames
C_WEIGHT = 0.7          # segment score = run max + C_WEIGHT * c_score
TOP_SHARE = 16          # c_score over the top F // TOP_SHARE frames
VERSION = "VERSION 1.3"


@dataclass
class Proposals:
    """Every segment of every video, one row each; ``rank`` orders a (video, class) group
    as the reference does (by score, its argsort)."""
    video: np.ndarray       # (n,) int, index into the list of videos
    column: np.ndarray      # (n,) int, column of the predictions (0 = Normal)
    start: np.ndarray       # (n,) int, first frame
    end: np.ndarray         # (n,) int, end frame, exclusive
    score: np.ndarray       # (n,) float64

    def take(self, idx) -> "Proposals":
        return Proposals(self.video[idx], self.column[idx], self.start[idx], self.end[idx],
                         self.score[idx])


def _video_segments(p: np.ndarray):
    """(column, start, end, score) arrays of one video's segments, columns in order, runs in
    frame order."""
    n_frames = p.shape[0]
    k = int(n_frames / TOP_SHARE)
    if k == 0:                                        # the reference's mean of nothing: nan
        return None
    part = np.partition(-p, k - 1, axis=0)[:k]
    part.sort(axis=0)
    c_score = np.mean(-part, axis=0)                  # (C,)
    tmp = p * (c_score > 0.0)
    mx, mn = tmp.max(axis=0), tmp.min(axis=0)
    above = tmp > (mx - (mx - mn) * RELATIVE)
    pad = np.zeros((1, p.shape[1]), dtype=np.int8)
    edges = np.diff(np.concatenate([pad, above.astype(np.int8), pad]), axis=0).T  # (C, F+1)
    col, start = np.nonzero(edges == 1)
    _, end = np.nonzero(edges == -1)
    keep = end - start >= MIN_RUN
    col, start, end = col[keep], start[keep], end[keep]
    if not len(col):
        return None
    flat = np.concatenate([np.ascontiguousarray(tmp.T).ravel(), tmp[:1, 0]])  # sentinel
    bounds = np.stack([col * n_frames + start, col * n_frames + end], axis=1).ravel()
    run_max = np.maximum.reduceat(flat, bounds)[::2]
    score = (run_max + C_WEIGHT * c_score[col]).astype(np.float64)
    return col, start, end, score


def vadclip_proposals(predictions: list[np.ndarray]) -> Proposals:
    """The segments of every video of ``predictions`` ((F_i, C) each), per (video, column)
    in the reference's order: by score, as its ``np.argsort(-score)`` orders them."""
    parts = []
    for i, p in enumerate(predictions):
        found = _video_segments(np.asarray(p))
        if found is None:
            continue
        col, start, end, score = found
        bounds = np.flatnonzero(np.diff(col)) + 1
        order = np.concatenate([g[np.argsort(-score[g])] for g in
                                np.split(np.arange(len(col)), bounds)])
        parts.append((np.full(len(col), i), col[order], start[order], end[order],
                      score[order]))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Proposals(empty, empty, empty, empty, np.zeros(0))
    return Proposals(*(np.concatenate(a) for a in zip(*parts)))


def _greedy(cand_pred, cand_gt, cand_iou, n_pred: int) -> np.ndarray:
    """(n_pred,) 0/1 true positives: predictions in rank order, each takes the unmatched
    ground truth of highest IoU among its candidates (first in ground-truth order on ties)."""
    tp = np.zeros(n_pred)
    taken: set[int] = set()
    order = np.lexsort((cand_gt, -cand_iou, cand_pred))
    last = -1
    for k in order:
        r, g = int(cand_pred[k]), int(cand_gt[k])
        if r == last or g in taken:
            continue
        tp[r], last = 1.0, r
        taken.add(g)
    return tp


def _vadclip_class_ap(props: Proposals, gt: np.ndarray, iou: float) -> float:
    """One class's AP at ``iou``: props already in rank order, gt (m, 3) video, start, end."""
    n = len(props.score)
    if not len(gt):
        return 0.0
    same = props.video[:, None] == gt[None, :, 0]
    inter = np.clip(np.minimum(props.end[:, None], gt[None, :, 2])
                    - np.maximum(props.start[:, None], gt[None, :, 1]), 0, None)
    len_gt = np.clip(gt[:, 2] - gt[:, 1], 0, None)[None, :]
    union = (props.end - props.start)[:, None] + len_gt - inter
    ious = inter.astype(np.float64) / union.astype(np.float64)
    r, g = np.nonzero(same & (ious >= iou))
    tp = _greedy(r, g, ious[r, g], n)
    if tp.sum() == 0:
        return 0.0
    tp_c, fp_c = np.cumsum(tp), np.cumsum(1.0 - tp)
    return np.sum((tp_c / (fp_c + tp_c)) * tp) / len(gt)


def vadclip_map(predictions: list[np.ndarray], truth: list[list[tuple[int, int, int]]],
                ious=IOUS, props: Proposals | None = None) -> list[float]:
    """VadCLIP's ``getDetectionMAP(...)[0]`` / 100 at each of ``ious``.

    ``predictions``: per video (F, C) probabilities, column 0 = Normal. ``truth``: per video
    its intervals as (start, end_exclusive, column)."""
    props = vadclip_proposals(predictions) if props is None else props
    n_cols = int(np.asarray(predictions[0]).shape[1]) if predictions else 0
    rows = [(i, s, e, c) for i, ivs in enumerate(truth) for s, e, c in ivs]
    gt_all = np.array(rows, dtype=np.int64).reshape(-1, 4)
    per_class = []
    for c in range(n_cols):
        mine = props.take(np.flatnonzero(props.column == c))
        if not len(mine.score):
            return [0.0 for _ in ious]                # the reference's ``return 0``
        per_class.append((mine.take(np.argsort(-mine.score)), gt_all[gt_all[:, 3] == c, :3]))
    return [float(100 * np.mean([_vadclip_class_ap(p, g, t) for p, g in per_class]) / 100)
            for t in ious]
