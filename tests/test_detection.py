"""Temporal detection mAP (evaluate/detection.py): hand-built cases worked out on paper, and
the vectorised code against straight loop transcriptions of the references' rules."""
from __future__ import annotations

import numpy as np
import pytest

from evaluate import detection as det


# ------------------------------------------------- VadCLIP's getLocMAP, transcribed as a loop
def _ref_loc_map(predictions, th, gtsegments, gtlabels, n_classes):
    preds, c_score = [], []
    for p in predictions:
        pp = -p
        for i in range(pp.shape[1]):
            pp[:, i].sort()
        pp = -pp
        with _quiet():                          # mean of 0 frames: nan, as in the reference
            c_s = np.mean(pp[:int(pp.shape[0] / 16), :], axis=0)
        c_score.append(c_s)
        preds.append(p * (c_s > 0.0))
    ap = []
    for c in range(n_classes):
        segment_predict = []
        for i, p in enumerate(preds):
            tmp = p[:, c]
            found = []
            threshold = np.max(tmp) - (np.max(tmp) - np.min(tmp)) * 0.6
            vid = np.concatenate([np.zeros(1), (tmp > threshold).astype("float32"), np.zeros(1)])
            diff = [vid[t] - vid[t - 1] for t in range(1, len(vid))]
            s = [k for k, d in enumerate(diff) if d == 1]
            e = [k for k, d in enumerate(diff) if d == -1]
            for j in range(len(s)):
                if e[j] - s[j] >= 2:
                    found.append([i, s[j], e[j], np.max(tmp[s[j]:e[j]]) + 0.7 * c_score[i][c]])
            if found:
                found = np.array(found)
                found = found[np.argsort(-found[:, -1])]
                segment_predict.extend(list(found))       # NMS keeps disjoint runs
        segment_predict = np.array(segment_predict)
        if len(segment_predict) == 0:
            return 0
        segment_predict = segment_predict[np.argsort(-segment_predict[:, 3])]
        gt = [[i, gtsegments[i][j][0], gtsegments[i][j][1]] for i in range(len(gtsegments))
              for j in range(len(gtsegments[i])) if gtlabels[i][j] == c]
        gtpos = len(gt)
        tp = []
        for row in segment_predict:
            flag, best, best_j = 0.0, 0.0, None
            for j, g in enumerate(gt):
                if row[0] == g[0]:
                    a, b = set(range(int(g[1]), int(g[2]))), set(range(int(row[1]), int(row[2])))
                    iou = float(len(a & b)) / float(len(a | b))
                    if iou >= th:
                        flag = 1.0
                        if iou > best:
                            best, best_j = iou, j
            if flag > 0:
                del gt[best_j]
            tp.append(flag)
        tp_c, fp_c = np.cumsum(tp), np.cumsum([1.0 - t for t in tp])
        ap.append(0.0 if sum(tp) == 0 else np.sum((tp_c / (fp_c + tp_c)) * tp) / gtpos)
    return 100 * np.mean(ap)


class _quiet:
    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def _ref_map(predictions, truth, n_classes):
    segs = [[(s, e) for s, e, _ in ivs] for ivs in truth]
    labs = [[c for _, _, c in ivs] for ivs in truth]
    return [_ref_loc_map([p.copy() for p in predictions], th, segs, labs, n_classes) / 100
            for th in det.IOUS]


def _random_split(rng, n_videos, n_classes, smooth=True):
    preds, truth = [], []
    for i in range(n_videos):
        f = int(rng.integers(5, 400))
        logits = rng.normal(size=(f, n_classes))
        if smooth:
            logits = np.cumsum(logits, axis=0) / 4
        p = np.exp(logits - logits.max(1, keepdims=True))
        p = (p / p.sum(1, keepdims=True)).astype(np.float32)
        if rng.random() < 0.3:
            p = np.round(p, 1).astype(np.float32)              # ties
        preds.append(p)
        ivs = []
        if i % 3 and f > 10:
            for _ in range(int(rng.integers(1, 3))):
                a = int(rng.integers(0, f - 3))
                ivs.append((a, int(rng.integers(a + 1, min(f, a + 120) + 1)),
                            int(rng.integers(1, n_classes))))
        truth.append(ivs)
    return preds, truth


@pytest.mark.parametrize("seed", range(6))
def test_vadclip_equals_the_loop_transcription_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    preds, truth = _random_split(rng, 25, 5, smooth=seed % 2 == 0)
    got = det.vadclip_map(preds, truth)
    assert got == _ref_map(preds, truth, 5)
    assert any(0 < g < 1 for g in got) or seed % 2


def _video(f, runs, n_cols=3, bg=0.0):
    """(f, n_cols) float32, column 0 = 1 - the anomaly mass; runs = [(col, a, b, value)]."""
    p = np.full((f, n_cols), bg, dtype=np.float32)
    for col, a, b, v in runs:
        p[a:b, col] = v
    p[:, 0] = 1 - p[:, 1:].sum(1)
    return p


def test_vadclip_perfect_prediction_reaches_its_ceiling_not_one():
    # two abnormal videos (class 1 with two intervals, class 2), one normal video
    preds = [_video(64, [(1, 10, 20, 1.0), (1, 40, 50, 1.0)]), _video(64, [(2, 5, 30, 1.0)]),
             _video(64, [])]
    truth = [[(10, 20, 1), (40, 50, 1)], [(5, 30, 2)], []]
    # classes 1 and 2: every interval found exactly, AP 1; Normal column: segments but no
    # interval, AP 0 -> mean (0 + 1 + 1) / 3 at every IoU
    assert det.vadclip_map(preds, truth) == pytest.approx([2 / 3] * 5)
    assert det.vadclip_map(preds, truth) == _ref_map(preds, truth, 3)


def test_vadclip_a_one_frame_run_is_no_segment_and_a_class_without_any_zeroes_all():
    preds = [_video(64, [(1, 10, 20, 1.0), (2, 40, 41, 1.0)]), _video(64, [])]
    truth = [[(10, 20, 1), (40, 41, 2)], []]
    # class 2's only run is 1 frame long: no segment of class 2 anywhere -> the reference
    # returns 0 for the whole IoU, though class 1 is perfect
    assert det.vadclip_map(preds, truth) == [0.0] * 5
    assert _ref_map(preds, truth, 3) == [0.0] * 5


def test_vadclip_empty_prediction_scores_zero():
    preds = [np.full((64, 3), 1 / 3, dtype=np.float32)] * 2
    assert det.vadclip_map(preds, [[(0, 10, 1)], [(3, 9, 2)]]) == [0.0] * 5


def test_vadclip_ranking_ties_and_greedy_matching_on_paper():
    # video 0, class 1: runs [0,10) peak 0.9 and [20,30) peak 0.5; interval [0,10).
    # video 1, class 1: run [0,10) peak 0.7, interval [5,15) (IoU 5/15 = 1/3).
    # c_score = mean of the top 4 of 64 frames per column.
    v0 = _video(64, [(1, 0, 10, 0.9), (1, 20, 30, 0.5), (2, 40, 60, 0.6)])
    v1 = _video(64, [(1, 0, 10, 0.7), (2, 40, 60, 0.6)])
    truth = [[(0, 10, 1)], [(5, 15, 1)]]
    got = det.vadclip_map([v0, v1], truth)
    # class 1 ranking: v0[0,10) 0.9+0.63, v1[0,10) 0.7+0.49, v0[20,30) 0.5+0.63 (1.13 < 1.19)
    # IoU 0.1-0.3: TP, TP, FP -> AP (1 + 1) / 2 = 1; IoU 0.4, 0.5: TP, FP, FP -> 1/2
    # class 2: no interval, AP 0; Normal: AP 0.  mAP = AP_1 / 3
    assert got == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1 / 6, 1 / 6])
    assert got == _ref_map([v0, v1], truth, 3)
