"""Training-free baselines, computed in seconds from the training videos (issue 24).

* centroid novelty: a frame's distance to the mean frame of the normal training videos;
* residual novelty: the norm of a frame's part off the normal frames' top-``rank`` PCA
  subspace (after subtracting their mean): the normal manifold removed;
* the prototype classifier: per video, the mean residual of its top ``share`` frames by
  residual norm; a class's prototype is the mean over its training videos; a video gets
  the class of the nearest prototype (cosine).

:func:`fit_baselines` fits them on training rows, :func:`baseline_metrics` scores
validation (or test) videos with the metric definitions validation uses, so a run can
say whether it does better than no training at all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RANK = 32               # PCA directions of the normal frames removed
TOP_SHARE = 0.2         # frames of a video averaged into its residual summary
MAX_PCA_ROWS = 50_000   # normal frames the PCA is fitted on (evenly subsampled)


@dataclass
class Baselines:
    mean: np.ndarray            # (D,) mean normal training frame
    basis: np.ndarray           # (rank, D) top principal directions of the normal frames
    prototypes: np.ndarray      # (C-1, D) class prototypes (zero row: class without videos)
    classes: list[str]          # anomaly classes, prototype row order

    def residual(self, x: np.ndarray) -> np.ndarray:
        """(T, D) rows -> (T, D) their part off the normal subspace."""
        c = np.asarray(x, dtype=np.float32) - self.mean
        return c - (c @ self.basis.T) @ self.basis

    def novelty(self, x: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(x, dtype=np.float32) - self.mean, axis=1)

    def residual_novelty(self, x: np.ndarray) -> np.ndarray:
        return np.linalg.norm(self.residual(x), axis=1)

    def summary(self, x: np.ndarray) -> np.ndarray:
        """(D,) the mean residual of the video's top TOP_SHARE frames by residual norm."""
        r = self.residual(x)
        norm = np.linalg.norm(r, axis=1)
        k = max(1, int(round(TOP_SHARE * len(r))))
        return r[np.argsort(-norm)[:k]].mean(0)

    def classify(self, x: np.ndarray) -> str:
        """The class of the nearest prototype (cosine) to the video's summary."""
        s = self.summary(x)
        p = self.prototypes
        cos = p @ s / (np.linalg.norm(p, axis=1) * np.linalg.norm(s) + 1e-12)
        return self.classes[int(np.argmax(cos))]


def fit_baselines(videos, class_of: dict[str, str], anomaly_classes: list[str],
                  normal_class: str, rank: int = RANK) -> Baselines:
    """Fit on training videos. ``videos``: {video_id: (T, D) rows} (or a callable id ->
    rows); ``class_of``: video_id -> class name."""
    rows = videos if callable(videos) else videos.__getitem__
    normal = [v for v, c in class_of.items() if c == normal_class]
    x = np.concatenate([np.asarray(rows(v), dtype=np.float32) for v in normal])
    x = x[:: max(1, len(x) // MAX_PCA_ROWS)]
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    model = Baselines(mean, vt[:rank].astype(np.float32), np.zeros(0), list(anomaly_classes))
    sums: dict[str, list] = {}
    for v, c in class_of.items():
        if c != normal_class:
            sums.setdefault(c, []).append(model.summary(rows(v)))
    d = x.shape[1]
    model.prototypes = np.array([np.mean(sums[c], 0) if c in sums else np.zeros(d)
                                 for c in anomaly_classes], dtype=np.float32).reshape(-1, d)
    return model


def baseline_metrics(model: Baselines, videos, meta, labels: dict[str, np.ndarray],
                     normal_class: str) -> dict[str, float]:
    """Frame AUC of both novelty scores, video AUC of their peaks and the prototype's top-1
    class accuracy on the videos of ``meta`` (rows with video_id, class_name);
    ``labels``: video_id -> 0/1 per row (the validation labels)."""
    from features.metrics import roc_auc, top1_accuracy, video_auc

    rows = videos if callable(videos) else videos.__getitem__
    y, nov, res, vy, vnov, vres, truth, pred = [], [], [], [], [], [], [], []
    for r in meta.itertuples(index=False):
        x = np.asarray(rows(r.video_id), dtype=np.float32)
        n, e = model.novelty(x), model.residual_novelty(x)
        y.append(labels[r.video_id])
        nov.append(n)
        res.append(e)
        vy.append(int(r.class_name != normal_class))
        vnov.append(n)
        vres.append(e)
        if r.class_name != normal_class:
            truth.append({r.class_name})
            pred.append(model.classify(x))
    y = np.concatenate(y)
    return {"novelty_auc": roc_auc(y, np.concatenate(nov)),
            "residual_auc": roc_auc(y, np.concatenate(res)),
            "novelty_video_auc": video_auc(vy, vnov),
            "residual_video_auc": video_auc(vy, vres),
            "prototype_top1": top1_accuracy(truth, pred)}


def residual_contrasts(rows, class_of: dict[str, str], anomaly_classes: list[str],
                       normal_class: str, rank: int = RANK,
                       share: float = TOP_SHARE) -> np.ndarray:
    """(C-1, D) per anomaly class, where its events point off the normal manifold: per
    video, the residual (off the normal frames' top-``rank`` PCA) minus the video's median
    residual (its scene), the mean of its top ``share`` rows by norm; averaged over the
    class's training videos, minus the same over the normal ones (events normal videos
    have too cancel). A class without videos gets a zero row. ``rows``: id -> (T, D)."""
    model = fit_baselines(rows, {v: c for v, c in class_of.items() if c == normal_class},
                          [], normal_class, rank)
    means: dict[str, list] = {}
    for v, c in class_of.items():
        r = model.residual(rows(v))
        r -= np.median(r, axis=0)
        norm = np.linalg.norm(r, axis=1)
        k = max(1, int(round(share * len(r))))
        means.setdefault(c, []).append(r[np.argsort(-norm)[:k]].mean(0))
    normal = np.mean(means[normal_class], axis=0)
    return np.stack([np.mean(means[c], 0) - normal if c in means else np.zeros_like(normal)
                     for c in anomaly_classes]).astype(np.float32)


def split_baselines(store, split) -> dict[str, float]:
    """The baselines of a run, fitted on its training videos and scored on its validation
    videos with the labels validation uses ({} without validation videos). Seconds."""
    from .validate import row_labels, uses_video_labels

    normal = split.normal_class
    if not len(split.val) or not (split.train["class_name"] == normal).any():
        return {}
    anomaly = [c for c in split.class_names if c != normal]
    model = fit_baselines(lambda v: store.rows(v),
                          dict(zip(split.train["video_id"], split.train["class_name"])),
                          anomaly, normal)
    video_level = uses_video_labels(split.val, normal)
    labels = {r.video_id: row_labels(r, store.frame_index(r.video_id), video_level, normal)
              for r in split.val.itertuples(index=False)}
    out = baseline_metrics(model, lambda v: store.rows(v), split.val, labels, normal)
    if video_level:                      # frame AUCs against video labels, named so
        out = {(k.replace("_auc", "_auc_videolabel") if k in ("novelty_auc", "residual_auc")
                else k): v for k, v in out.items()}
    return out


# what each model metric is compared with: the best baseline of the same definition
_AGAINST = {"video_auc": ("novelty_video_auc", "residual_video_auc"),
            "auc": ("novelty_auc", "residual_auc"),
            "auc_videolabel": ("novelty_auc_videolabel", "residual_auc_videolabel"),
            "video_top1_accuracy": ("prototype_top1",)}


def baselines_line(best: dict, baselines: dict) -> str | None:
    """One line when the kept checkpoint's validation is no better than a training-free
    baseline on some metric (detection or recognition), with the numbers; else None."""
    worse = []
    for key, against in _AGAINST.items():
        mine = best.get(key)
        theirs = [(baselines[b], b) for b in against if baselines.get(b) == baselines.get(b)
                  and b in baselines]
        if mine is None or mine != mine or not theirs:
            continue
        value, name = max(theirs)
        if mine <= value:
            worse.append(f"{key} {mine:.3f} vs {name} {value:.3f}")
    if not worse:
        return None
    return ("validation is no better than a training-free baseline (train/baselines.py, fitted "
            "on the training videos): " + "; ".join(worse) + "; see docs/training.md, "
            "'Training-free baselines'")


def format_baselines(baselines: dict) -> str:
    """``novelty_video_auc 0.55, ..., prototype_top1 0.88`` (undefined values left out)."""
    return ", ".join(f"{k} {v:.3f}" for k, v in baselines.items() if v == v)
