"""What the training videos say before training: the normal centroid m (mean feature over
all frames of all normal training videos) and each class's event contrast (the data
directions of ``direction_init=data``)."""
from __future__ import annotations

import numpy as np
import torch


def normal_centroid(store, video_ids: list[str]) -> torch.Tensor:
    """(D,) float32 mean of every stored row of ``video_ids`` (read one video at a time).

    Accumulated in float64 so a long training split does not lose precision.
    """
    if not video_ids:
        raise ValueError("no normal training videos to compute the centroid from")
    total = np.zeros(store.embed_dim, dtype=np.float64)
    count = 0
    for vid in video_ids:
        x = store.rows(vid)                                # (T, D) float16
        total += x.astype(np.float64).sum(axis=0)
        count += len(x)
    return torch.from_numpy(total / count).float()


def event_contrast(x: np.ndarray, share: float = 0.1) -> np.ndarray:
    """(T, D) rows of one video -> (D,) mean offset of its ``share`` of rows farthest from
    the video's median row: where its events point, its own scene subtracted."""
    offsets = x - np.median(x, axis=0)                     # (T, D)
    dist = np.linalg.norm(offsets, axis=1)
    return offsets[dist >= np.quantile(dist, 1 - share)].mean(axis=0)


def class_contrasts(store, videos: dict[str, str], anomaly_classes: list[str],
                    normal_class: str) -> torch.Tensor:
    """(C-1, D) float32, one row per anomaly class in ``anomaly_classes`` order: the mean
    event contrast of the class's training videos minus that of the normal training
    videos, so events that happen in normal videos too cancel. ``videos``: video_id ->
    class name; a class without videos gets a zero row."""
    contrasts: dict[str, list[np.ndarray]] = {}
    for vid, name in videos.items():
        contrasts.setdefault(name, []).append(event_contrast(store.rows(vid)
                                                             .astype(np.float64)))
    normal = np.mean(contrasts[normal_class], axis=0)
    rows = [np.mean(contrasts[c], axis=0) - normal if c in contrasts
            else np.zeros(store.embed_dim) for c in anomaly_classes]
    return torch.from_numpy(np.stack(rows)).float()
