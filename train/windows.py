"""Training windows: N segments x L consecutive rows per video, read from HDF5 or RAM.

Sampling (docs/method.md, Training; the reference's rule): ``dist = (T - L + 1) // N``;
segment i starts at ``i * dist`` plus a jitter drawn from ``[0, dist - L + 1]``. A video
shorter than ``N * L`` rows is sampled as if it had ``N * L`` rows (``dist = (N*L - L + 1)
// N``, 15 for 32 x 16: consecutive segments overlap by one row; no jitter) with row indices
taken modulo T. Every item carries its own seed, so a batch is the same whatever the number
of DataLoader workers.

Sources: :class:`HDF5Rows` reads only the rows a window needs (a slice per segment, or the
covering range for short videos; the file is opened lazily in each DataLoader worker, after
fork); :class:`MemoryRows`
holds every row of the split in one float16 array (the cached mode, when it fits in RAM).
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from features.integrity import reading


def window_rows(n_rows: int, num_segments: int, seg_length: int,
                rng: np.random.Generator) -> np.ndarray:
    """(N, L) row indices of one training window of a video with ``n_rows`` rows."""
    n, l = num_segments, seg_length
    offsets = np.arange(l)
    dist = (max(n_rows, n * l) - l + 1) // n
    jitter = rng.integers(0, max(dist - l + 1, 0) + 1, size=n)
    starts = np.arange(n) * dist + jitter                              # (N,)
    return (starts[:, None] + offsets) % n_rows                        # (N, L)


def read_window(ds: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """The (N, L, D) window at ``rows`` (N, L) of a (T, D) dataset.

    Measured on 64-row chunks: one slice per segment is fastest for long videos (~1,500
    windows/s), one read of the covering range for short ones (~5,000/s); a single
    multi-hyperslab selection was 15x slower than either.
    """
    n, l = rows.shape
    lo, hi = int(rows.min()), int(rows.max()) + 1
    consecutive = bool((rows[:, -1] - rows[:, 0] == l - 1).all())
    if not consecutive or hi - lo <= 2 * n * l:
        return ds[lo:hi][rows - lo]
    out = np.empty((n, l, ds.shape[1]), dtype=ds.dtype)
    for i, start in enumerate(rows[:, 0]):
        out[i] = ds[int(start):int(start) + l]
    return out


class HDF5Rows:
    """Rows of the store's videos, read on demand; picklable (reopens after fork)."""

    def __init__(self, path: str | Path, video_ids: list[str]):
        self.path, self.video_ids = str(path), list(video_ids)
        self._h5, self._pid = None, None

    def _file(self) -> h5py.File:
        if self._h5 is None or self._pid != os.getpid():
            self._h5, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._h5

    def window(self, i: int, rows: np.ndarray) -> np.ndarray:
        with reading(self.path, self.video_ids[i]):
            return read_window(self._file()[f"videos/{self.video_ids[i]}/embeddings"], rows)

    def video(self, i: int) -> np.ndarray:
        with reading(self.path, self.video_ids[i]):
            return self._file()[f"videos/{self.video_ids[i]}/embeddings"][()]

    def __getstate__(self):
        return {"path": self.path, "video_ids": self.video_ids, "_h5": None, "_pid": None}


class MemoryRows:
    """Every row of the given videos in one (total_rows, D) float16 array plus offsets."""

    def __init__(self, store, video_ids: list[str], progress=None):
        self.video_ids = list(video_ids)
        lengths = [store.embeddings(v).shape[0] for v in self.video_ids]
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.data = np.empty((int(self.offsets[-1]), store.embed_dim), dtype=np.float16)
        for i, vid in enumerate(self.video_ids):
            store.read_into(vid, self.data, int(self.offsets[i]))
            if progress is not None:
                progress.update(1)

    def window(self, i: int, rows: np.ndarray) -> np.ndarray:
        return self.data[self.offsets[i] + rows]

    def video(self, i: int) -> np.ndarray:
        return self.data[self.offsets[i]:self.offsets[i + 1]]


# with cache=auto, a run's windows come from RAM when its rows take at most this share of
# physical memory (runs sharing a machine split it between them)
MEMORY_SHARE = 0.4


def rows_bytes(store, video_ids: list[str]) -> int:
    return sum(int(np.prod(store.embeddings(v).shape)) * 2 for v in video_ids)


def fits_in_memory(n_bytes: int, fraction: float = MEMORY_SHARE) -> bool:
    """True when ``n_bytes`` is at most ``fraction`` of this machine's physical memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return False
    return n_bytes <= fraction * total


class WindowDataset(Dataset):
    """Item ``(video position, item seed)`` -> ((N, L, D) float16 window, class index)."""

    def __init__(self, source, n_rows: list[int], class_index: list[int], num_segments: int,
                 seg_length: int):
        self.source, self.n_rows, self.class_index = source, list(n_rows), list(class_index)
        self.num_segments, self.seg_length = num_segments, seg_length

    def __len__(self):
        return len(self.n_rows)

    def __getitem__(self, item):
        i, seed = item
        rows = window_rows(self.n_rows[i], self.num_segments, self.seg_length,
                           np.random.default_rng(seed))
        x = self.source.window(i, rows)                                # (N, L, D) float16
        return torch.from_numpy(np.ascontiguousarray(x)), self.class_index[i]


class BalancedBatches:
    """Batches of half abnormal, half normal videos; every video of the larger group at least
    once per epoch. Deterministic in (seed, epoch); call :meth:`set_epoch` before iterating."""

    def __init__(self, abnormal: list[int], normal: list[int], half: int, steps: int, seed: int):
        self.abnormal, self.normal = np.asarray(abnormal), np.asarray(normal)
        self.half, self.steps, self.seed, self.epoch = half, steps, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return self.steps

    def _draw(self, rng, pool: np.ndarray) -> np.ndarray:
        need = self.steps * self.half
        reps = -(-need // len(pool))
        return np.concatenate([rng.permutation(pool) for _ in range(reps)])[:need]

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        abn = self._draw(rng, self.abnormal).reshape(self.steps, self.half)
        nor = self._draw(rng, self.normal).reshape(self.steps, self.half)
        seeds = rng.integers(0, 2 ** 63 - 1, size=(self.steps, 2 * self.half))
        for step in range(self.steps):
            videos = np.concatenate([abn[step], nor[step]])
            yield [(int(v), int(s)) for v, s in zip(videos, seeds[step])]


def collate_windows(items):
    """[(window (N, L, D), class)] -> ((B, N, L, D), (B,)), copied window by window in numpy.

    (torch.stack / Tensor.copy_ of large float16 tensors run multi-threaded and were measured
    15x slower than a plain numpy copy on a loaded 2-core machine.)
    """
    first = items[0][0]
    x = np.empty((len(items),) + tuple(first.shape), dtype=first.numpy().dtype)
    for i, (window, _) in enumerate(items):
        x[i] = window.numpy()
    return torch.from_numpy(x), torch.tensor([c for _, c in items], dtype=torch.long)


def window_loader(dataset: WindowDataset, batches: BalancedBatches, workers: int,
                  pin_memory: bool = False) -> DataLoader:
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers,
                      collate_fn=collate_windows, persistent_workers=workers > 0,
                      pin_memory=pin_memory)
