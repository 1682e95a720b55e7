"""The metric definitions (features/metrics.py) equal scikit-learn's, on random data and edge cases;
validation and scoring compute them with the same functions."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm

from evaluate.summary import summarize
from features import metrics as M


def _cases():
    rng = np.random.default_rng(0)
    for n, p in ((50, 0.3), (400, 0.05), (1000, 0.5)):
        y = (rng.random(n) < p).astype(int)
        y[:2] = [0, 1]                                          # both classes present
        yield "random", y, rng.random(n)
        yield "ties", y, np.round(rng.random(n), 1)             # ~10 distinct values
        yield "informative", y, np.clip(y * 0.3 + rng.normal(0.4, 0.2, n), 0, 1)
    y = np.array([0, 1, 0, 1, 1, 0])
    yield "all tied", y, np.full(6, 0.5)
    yield "perfect", y, y * 0.8 + 0.1
    yield "inverted", y, 1.0 - y


@pytest.mark.parametrize("name,y,s", list(_cases()))
def test_binary_metrics_equal_sklearn(name, y, s):
    assert M.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert M.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    precision, recall, _ = skm.precision_recall_curve(y, s)
    assert M.ap_trapezoid(y, s) == pytest.approx(skm.auc(recall, precision), abs=1e-12)
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    best = int(np.argmax(tpr - fpr))
    got = M.youden_threshold(y, s)
    assert got["j"] == pytest.approx(tpr[best] - fpr[best], abs=1e-12)
    assert got["threshold"] == thr[best]
    yhat = np.asarray(s) >= got["threshold"]
    assert got["tpr"] == pytest.approx(yhat[y == 1].mean())
    assert got["fpr"] == pytest.approx(yhat[y == 0].mean())


def test_trapezoid_ap_differs_from_stepwise_ap():
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0])
    s = np.array([.9, .8, .7, .6, .5, .4, .3, .2])
    # step-wise: (1/3)(1 + 2/3 + 3/6)
    assert M.average_precision(y, s) == pytest.approx((1 + 2 / 3 + 0.5) / 3)
    assert M.ap_trapezoid(y, s) != pytest.approx(M.average_precision(y, s))


def test_one_class_present_is_nan_like_sklearn():
    s = np.array([0.1, 0.4, 0.35, 0.8])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(skm.roc_auc_score(np.ones(4), s))       # sklearn: undefined too
    assert np.isnan(M.roc_auc(np.ones(4), s))
    assert np.isnan(M.roc_auc(np.zeros(4), s))
    assert np.isnan(M.average_precision(np.zeros(4), s))        # no positive: undefined
    assert np.isnan(M.ap_trapezoid(np.zeros(4), s))
    assert M.average_precision(np.ones(4), s) == pytest.approx(
        skm.average_precision_score(np.ones(4), s))
    assert np.isnan(M.youden_threshold(np.zeros(4), s)["threshold"])


def test_false_alarm_rate():
    assert M.false_alarm_rate([0.1, 0.5, 0.7, 0.2]) == 0.5     # >= 0.5 counts as an alarm
    assert M.false_alarm_rate([0.1, 0.5], threshold=0.6) == 0.0
    assert np.isnan(M.false_alarm_rate([]))


def test_class_table_one_vs_rest_skips_normal_and_absent():
    rng = np.random.default_rng(1)
    names = ["Arson", "Fighting", "Normal", "Shooting"]
    true = rng.choice(["Arson", "Fighting", "Normal"], size=300)          # Shooting absent
    probs = rng.dirichlet(np.ones(4), size=300)
    table = M.class_table(true, probs, names)
    assert list(table["class_name"]) == ["Arson", "Fighting", "Shooting"]
    for k, name in ((0, "Arson"), (1, "Fighting")):
        row = table.set_index("class_name").loc[name]
        y = (true == name).astype(int)
        assert row["auc"] == pytest.approx(skm.roc_auc_score(y, probs[:, k]))
        assert row["ap"] == pytest.approx(skm.average_precision_score(y, probs[:, k]))
    shooting = table.set_index("class_name").loc["Shooting"]
    assert shooting["n_frames"] == 0 and np.isnan(shooting["auc"])
    assert M.mean_over_present(table, "auc") == pytest.approx(table["auc"][:2].mean())


def _scored(rng, videos):
    """A frames table and a videos table: (video_id, class, n_frames, interval, score level)."""
    names = ["Arson", "Fighting", "Normal"]
    frames, rows = [], []
    for vid, cls, n, iv, hit in videos:
        y = np.zeros(n, int)
        if iv:
            y[iv[0]:iv[1] + 1] = 1
        s = np.clip(0.15 + 0.6 * y + rng.normal(0, 0.1, n), 0, 1)
        # class split of s: mostly the true class inside the event when `hit`
        share = np.full((n, 2), 0.5)
        if cls != "Normal":
            k = names.index(cls if hit else ("Fighting" if cls == "Arson" else "Arson"))
            share[y == 1] = 0.1
            share[y == 1, k] = 0.9
        df = pd.DataFrame({"video_id": vid, "frame": np.arange(n), "p_anomaly": s,
                           "p_Arson": s * share[:, 0], "p_Fighting": s * share[:, 1],
                           "p_Normal": 1 - s, "label": y})
        frames.append(df)
        rows.append({"video_id": vid, "label": int(cls != "Normal"), "class_names_all": [cls]})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(rows), names


def test_summarize_pools_frames_and_matches_sklearn():
    rng = np.random.default_rng(2)
    frames, videos, names = _scored(rng, [
        ("a1", "Arson", 90, (30, 59), True), ("a2", "Arson", 70, (10, 29), False),
        ("f1", "Fighting", 80, (40, 79), True), ("n1", "Normal", 100, None, True),
        ("n2", "Normal", 60, None, True)])
    got, table = summarize(frames, videos, names)
    y, s = frames["label"].to_numpy(), frames["p_anomaly"].to_numpy()
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert got["ap"] == pytest.approx(skm.average_precision_score(y, s))
    ab = frames["video_id"].isin(["a1", "a2", "f1"]).to_numpy()
    assert got["auc_abnormal_videos"] == pytest.approx(skm.roc_auc_score(y[ab], s[ab]))
    assert got["false_alarm_rate"] == pytest.approx((s[~ab] >= 0.5).mean())
    assert got["video_top1_accuracy"] == pytest.approx(2 / 3)   # a2 is recognised wrongly
    arson_y = (frames["video_id"].str.startswith("a") & (frames["label"] == 1)).to_numpy()
    arson = table.set_index("class_name").loc["Arson"]
    assert arson["auc"] == pytest.approx(skm.roc_auc_score(arson_y, frames["p_Arson"]))
    assert arson["n_videos"] == 2 and arson["video_top1_accuracy"] == 0.5
    assert got["mauc"] == pytest.approx(table["auc"].mean())
    assert got["n_frames"] == 400 and got["n_abnormal_videos"] == 3


def test_hand_checked_auc_and_ap():
    y = np.array([0, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.5, 0.8])
    # pairs (positive, negative): (.4,.1) (.4,.5)x (.8,.1) (.8,.5) -> 3 of 4 ranked right
    assert M.roc_auc(y, s) == 0.75 == skm.roc_auc_score(y, s)
    # ranked .8(+) .5(-) .4(+) .1(-): precision 1 at recall 1/2, 2/3 at recall 1
    assert M.average_precision(y, s) == pytest.approx((1 + 2 / 3) / 2)


class _Echo(torch.nn.Module):
    """A stand-in model whose rows are its outputs: [p_anomaly, P(class 0..C-1)]."""
    num_segments, seg_length = 2, 4

    def forward(self, x):                                   # (B, N, L, 1 + C)
        return {"p_anomaly": x[..., 0], "class_probs": x[..., 1:],
                "S": x[..., 1:-1]}


def _multi_label_split():
    """Four videos, one frame in two classes' intervals (sx: Shooting and Explosion), a
    class (Fighting) with no positive frame; scores and class probabilities per frame."""
    names = ["Arson", "Explosion", "Fighting", "Normal", "Shooting"]
    videos = [("sx", "Shooting", ["Shooting", "Explosion"], 16, [(4, 9)]),
              ("ar", "Arson", ["Arson"], 12, [(2, 6)]),
              ("n1", "Normal", ["Normal"], 14, []), ("n2", "Normal", ["Normal"], 10, [])]
    rng = np.random.default_rng(5)
    meta, rows, frames = [], [], []
    for vid, cls, classes, n, intervals in videos:
        y = np.zeros(n, int)
        for a, b in intervals:
            y[a:b + 1] = 1
        p = np.clip(0.2 + 0.5 * y + rng.normal(0, 0.15, n), 0.01, 0.99)
        probs = rng.dirichlet(np.ones(len(names)), size=n)
        for c in classes:
            if c != "Normal":                               # the video's classes lead
                probs[y == 1, names.index(c)] += 0.5
        probs /= probs.sum(1, keepdims=True)
        rows.append(np.c_[p, probs])
        meta.append({"video_id": vid, "class_name": cls, "class_names_all": classes,
                     "intervals": intervals, "n_frames": n})
        frames.append(pd.DataFrame({"video_id": vid, "p_anomaly": p, "label": y,
                                    **{f"p_{c}": probs[:, k] for k, c in enumerate(names)}}))
    return names, pd.DataFrame(meta), rows, pd.concat(frames, ignore_index=True)


def test_validation_and_scoring_metrics_are_the_same_functions():
    from train.validate import validation_metrics

    names, meta, rows, frames = _multi_label_split()
    source = type("Rows", (), {"video": staticmethod(lambda i: rows[i])})()
    index = {v: np.arange(n) for v, n in zip(meta["video_id"], meta["n_frames"])}
    val = validation_metrics(_Echo(), source, meta, index, names, "Normal", device="cpu")
    videos = pd.DataFrame({"video_id": meta["video_id"],
                           "label": (meta["class_name"] != "Normal").astype(int),
                           "class_names_all": meta["class_names_all"]})
    scored, table = summarize(frames, videos, names)
    for key in ("auc", "ap", "mauc", "video_top1_accuracy"):
        assert val[key] == pytest.approx(scored[key], abs=1e-12), key

    # by hand with scikit-learn: each class one-vs-rest, sx's event frames are positives of
    # both Shooting and Explosion, Fighting (no positive) is left out of the mean
    y = frames["label"].to_numpy()
    in_sx, in_ar = (frames["video_id"] == "sx").to_numpy(), (frames["video_id"] == "ar").to_numpy()
    by_hand = [skm.roc_auc_score(y * in_sx, frames["p_Shooting"]),
               skm.roc_auc_score(y * in_sx, frames["p_Explosion"]),
               skm.roc_auc_score(y * in_ar, frames["p_Arson"])]
    assert scored["mauc"] == pytest.approx(np.mean(by_hand), abs=1e-12)
    assert scored["auc"] == pytest.approx(skm.roc_auc_score(y, frames["p_anomaly"]), abs=1e-12)
    rows_of = table.set_index("class_name")
    assert rows_of.loc["Explosion", "n_frames"] == 6 == rows_of.loc["Shooting", "n_frames"]
    assert rows_of.loc["Fighting", "n_frames"] == 0 and np.isnan(rows_of.loc["Fighting", "auc"])
    peaks = frames.groupby("video_id", sort=False)["p_anomaly"].max()
    assert val["video_auc"] == pytest.approx(skm.roc_auc_score([1, 1, 0, 0], peaks), abs=1e-12)
