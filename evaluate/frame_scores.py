"""Whole-video scores on native frames: the docs/method.md inference procedure plus alignment.

A video's T stored rows are padded by wrap-around to a multiple of N*L, split into
interleaved N x L grids that each span the whole video, scored with BatchNorm in eval mode
(running statistics) and trimmed back to T rows; this part is
:func:`train.model.inference.predict_videos`, the same code validation uses during training, so
what was selected on is what is scored. Then, at stride > 1, each row's scores are repeated
over the native frames it stands for (row i: frames ``frame_index[i]`` up to the next
row's), and the result must have exactly the stored native frame count ``n_frames``: a
mismatch is an error naming the video, never a silent shift (docs/method.md, Evaluation).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from features.errors import UserError
from train.model import predict_videos


@dataclass
class FrameScores:
    """One video's scores, one row per native frame."""
    video_id: str
    p_anomaly: np.ndarray       # (n_frames,) s = p(anomaly)
    class_probs: np.ndarray     # (n_frames, C) P in the checkpoint's class order

    @property
    def n_frames(self) -> int:
        return len(self.p_anomaly)


def native_spans(frame_index: np.ndarray, n_frames: int, stride: int, video_id: str,
                 where: str = "the feature file") -> np.ndarray:
    """(T,) how many native frames each stored row stands for; they sum to ``n_frames``.

    Row i stands for frames ``frame_index[i] .. frame_index[i+1] - 1`` (the last row up to
    ``n_frames - 1``). Raises UserError unless the rows start at frame 0, increase, and
    every span is at most ``stride`` frames (so the rows cover the video exactly).
    """
    f = np.asarray(frame_index, dtype=np.int64)
    n_frames, stride = int(n_frames), max(int(stride), 1)
    expected = -(-n_frames // stride)
    spans = np.diff(np.r_[f, n_frames])
    if (len(f) != expected or len(f) == 0 or f[0] != 0 or (spans < 1).any()
            or (spans > stride).any()):
        raise UserError(
            f"{where}: video {video_id!r} has {len(f)} rows at stride {stride} but "
            f"n_frames={n_frames} needs {expected} (frames {f[:1].tolist()}..{f[-1:].tolist()}); "
            "its scores would not line up with its frames: re-extract it "
            "(`pipeline extract` after deleting it from the file)")
    return spans


def to_native(values: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Repeat row values (T, ...) over their native frames -> (sum(spans), ...)."""
    if len(values) != len(spans):
        raise ValueError(f"{len(values)} scored rows for {len(spans)} stored rows")
    out = np.repeat(values, spans, axis=0)
    assert len(out) == int(spans.sum())
    return out


def score_videos(model, videos: Iterable[tuple[str, np.ndarray, np.ndarray, int, int]],
                 device=None, grid_batch: int = 64,
                 where: str = "the feature file") -> Iterator[FrameScores]:
    """Score videos given as (video_id, rows (T, D), frame_index (T,), n_frames, stride).

    ``model`` is in eval mode on ``device`` with ``num_segments`` / ``seg_length``; grids of
    several short videos are batched together. Yields :class:`FrameScores` in input order,
    each with exactly ``n_frames`` rows.
    """
    pending: list[tuple[str, np.ndarray]] = []

    def rows():
        for video_id, x, frame_index, n_frames, stride in videos:
            spans = native_spans(frame_index, n_frames, stride, video_id, where)
            pending.append((video_id, spans))
            yield x                                                    # (T, D)

    for out in predict_videos(model, rows(), device, grid_batch):
        video_id, spans = pending.pop(0)
        yield FrameScores(video_id, to_native(out["p_anomaly"], spans),        # (F,)
                          to_native(out["class_probs"], spans))                # (F, C)
