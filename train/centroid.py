"""The normal centroid m: mean feature over all frames of all normal training videos."""
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
        x = store.embeddings(vid)[()]                      # (T, D) float16
        total += x.astype(np.float64).sum(axis=0)
        count += len(x)
    return torch.from_numpy(total / count).float()
