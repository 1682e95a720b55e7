"""Whole-video inference (docs/method.md, Inference): wrap-around padding, interleaved grids.

A video of T rows is padded by wrap-around to P = k * N * L rows (k = ceil(T / (N*L))) and
viewed as k interleaved N x L grids that each span the whole video: grid j, segment i,
frame l is padded row ``i * k * L + j * L + l``. Every padded row appears in exactly one
grid, so after scoring the rows are put back in order and trimmed to T.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch

OUTPUTS = ("p_anomaly", "class_probs", "S")       # what predict_videos yields per video


def grid_rows(n_rows: int, num_segments: int, seg_length: int) -> np.ndarray:
    """(k, N, L) row indices (modulo T) of the interleaved grids covering a video."""
    n, l = num_segments, seg_length
    k = -(-n_rows // (n * l))
    i, j, f = np.meshgrid(np.arange(n), np.arange(k), np.arange(l), indexing="ij")  # (N, k, L)
    padded = (i * k * l + j * l + f).transpose(1, 0, 2)                             # (k, N, L)
    return padded % n_rows


def _ungrid(grids: torch.Tensor, n_rows: int) -> torch.Tensor:
    """(k, N, L, ...) grid outputs of one video -> (T, ...) in row order."""
    k, _, l = grids.shape[:3]
    r = torch.arange(n_rows, device=grids.device)
    # padded row r sits in grid (r // L) % k, segment r // (k * L), frame r % L
    return grids[(r // l) % k, r // (k * l), r % l]


@torch.no_grad()
def predict_videos(model, videos: Iterable, device=None,
                   grid_batch: int = 64) -> Iterator[dict[str, np.ndarray]]:
    """Score videos one after another, batching the grids of several short videos together.

    videos: iterable of (T, D) arrays. Yields, per video in order, ``p_anomaly`` (T,),
    ``class_probs`` (T, C) and the selector's ``S`` (T, C-1). ``model`` must be in eval mode
    (BatchNorm running statistics).
    """
    device = device or next(model.parameters()).device
    pending: list[tuple[int, torch.Tensor]] = []           # (T, grids (k, N, L, D)) waiting
    size = 0

    def flush():
        windows = torch.cat([g for _, g in pending])       # (sum k, N, L, D)
        parts = {key: [] for key in OUTPUTS}
        for a in range(0, len(windows), grid_batch):
            out = model(windows[a:a + grid_batch])
            for key in OUTPUTS:
                if key in out:                             # S: not from every stand-in model
                    parts[key].append(out[key])
        joined = {key: torch.cat(chunks) for key, chunks in parts.items() if chunks}
        start = 0
        for n_rows, grids in pending:
            k = len(grids)
            yield {key: _ungrid(value[start:start + k], n_rows).cpu().numpy()
                   for key, value in joined.items()}
            start += k

    for x in videos:
        x = torch.as_tensor(np.asarray(x)).to(device=device, dtype=torch.float32)  # (T, D)
        idx = torch.as_tensor(grid_rows(len(x), model.num_segments, model.seg_length),
                              device=device)
        pending.append((len(x), x[idx]))                   # (k, N, L, D)
        size += len(idx)
        if size >= grid_batch:
            yield from flush()
            pending, size = [], 0
    if pending:
        yield from flush()


def predict_video(model, x, device=None, grid_batch: int = 64) -> dict[str, np.ndarray]:
    """Score one video: x (T, D) rows -> ``p_anomaly`` (T,), ``class_probs`` (T, C)."""
    return next(predict_videos(model, [x], device, grid_batch))
