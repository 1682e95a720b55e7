"""The MIL ranking baseline (Sultani, Chen, Shah, CVPR 2018), small, on a feature store.

Each video is a bag of 32 segments, a segment the mean of its rows (features standardised
with the training rows' mean and overall standard deviation). A small MLP (D -> 128 -> 32
-> 1, ReLU, dropout 0.6, sigmoid; the paper's 512 hidden units were for 4096-d C3D
features, and 128 keeps 3,000 iterations near a minute on a shared CPU core) scores
segments; per pair of an abnormal and a normal
video the loss is the hinge ``max(0, 1 - max s_abnormal + max s_normal)`` plus
``8e-5 * sum (s_i - s_{i+1})^2`` (smoothness) and ``8e-5 * sum s_i`` (sparsity) over the
abnormal bag. Batches of 30 abnormal + 30 normal videos, Adagrad (lr 1e-3, weight decay
1e-3), 3,000 iterations by default. A frame's score is its segment's. It has no classes:
detection only.

    from bench.mil_baseline import train_mil, score_mil
    model = train_mil(store_path, seed=0)
    frame_scores = score_mil(model, store_path, video_ids)      # {video_id: (T,) scores}
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

SEGMENTS = 32


def segment_means(x: np.ndarray, n: int = SEGMENTS) -> tuple[np.ndarray, np.ndarray]:
    """(T, D) rows -> (n, D) segment means and (T,) segment index of each row.

    Segment e holds rows [e T / n, (e + 1) T / n); in a video shorter than n rows an empty
    segment takes the row at its start."""
    t = len(x)
    seg_of_row = np.arange(t) * n // t
    sums = np.zeros((n, x.shape[1]), dtype=np.float64)
    np.add.at(sums, seg_of_row, x)
    counts = np.bincount(seg_of_row, minlength=n)
    out = sums / np.maximum(counts, 1)[:, None]
    empty = counts == 0
    out[empty] = x[np.minimum(np.flatnonzero(empty) * t // n, t - 1)]
    return out.astype(np.float32), seg_of_row


class MILNet(nn.Module):
    def __init__(self, dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(0.6),
                                 nn.Linear(hidden, 32), nn.Dropout(0.6), nn.Linear(32, 1),
                                 nn.Sigmoid())

    def forward(self, bags: torch.Tensor) -> torch.Tensor:
        # bags (B, n, D) -> scores (B, n)
        return self.net(bags).squeeze(-1)


@dataclass
class MILModel:
    net: MILNet
    mean: np.ndarray             # (D,) training rows' mean
    scale: float                 # training rows' overall standard deviation


def mil_loss(s_abn: torch.Tensor, s_nor: torch.Tensor, lam: float = 8e-5) -> torch.Tensor:
    """s_abn, s_nor (B, n) segment scores of paired abnormal / normal bags -> scalar."""
    hinge = torch.relu(1 - s_abn.max(1).values + s_nor.max(1).values)
    smooth = ((s_abn[:, 1:] - s_abn[:, :-1]) ** 2).sum(1)
    sparse = s_abn.sum(1)
    return (hinge + lam * smooth + lam * sparse).mean()


def _training_bags(store_path, video_ids=None):
    from features.schema import NORMAL_CLASS
    from features.store import open_store

    with open_store(store_path) as store:
        meta = store.metadata()
        train = meta[meta["split"] == "train"]
        if video_ids is not None:
            train = train[train["video_id"].isin(video_ids)]
        rows = {v: store.embeddings(v)[()].astype(np.float32) for v in train["video_id"]}
    everything = np.concatenate(list(rows.values()))
    mean, scale = everything.mean(0), float(everything.std())
    bags = {v: segment_means((x - mean) / scale)[0] for v, x in rows.items()}
    abnormal = [v for v, c in zip(train["video_id"], train["class_name"]) if c != NORMAL_CLASS]
    normal = [v for v, c in zip(train["video_id"], train["class_name"]) if c == NORMAL_CLASS]
    return (np.stack([bags[v] for v in abnormal]), np.stack([bags[v] for v in normal]),
            mean, scale)


def train_mil(store_path, seed: int = 0, iterations: int = 3000, batch: int = 30,
              lr: float = 1e-3, video_ids=None) -> MILModel:
    """Train the baseline on the store's training videos (``video_ids``: a subset)."""
    abn, nor, mean, scale = _training_bags(store_path, video_ids)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = MILNet(abn.shape[-1])
    optimizer = torch.optim.Adagrad(net.parameters(), lr=lr, weight_decay=1e-3)
    abn_t, nor_t = torch.from_numpy(abn), torch.from_numpy(nor)
    net.train()
    for _ in range(iterations):
        a = abn_t[rng.integers(0, len(abn_t), batch)]
        n = nor_t[rng.integers(0, len(nor_t), batch)]
        loss = mil_loss(net(a), net(n))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return MILModel(net.eval(), mean, scale)


@torch.no_grad()
def score_mil(model: MILModel, store_path, video_ids) -> dict[str, np.ndarray]:
    """{video_id: (T,) score per stored row}: each row gets its segment's score."""
    from features.store import open_store

    out = {}
    with open_store(store_path) as store:
        for v in video_ids:
            x = (store.embeddings(v)[()].astype(np.float32) - model.mean) / model.scale
            bag, seg_of_row = segment_means(x)
            out[v] = model.net(torch.from_numpy(bag)[None])[0].numpy()[seg_of_row]
    return out
