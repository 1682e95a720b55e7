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
    model.prototypes = np.stack([np.mean(sums[c], 0) if c in sums else np.zeros(d)
                                 for c in anomaly_classes]).astype(np.float32)
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
