"""Frame alignment of whole-video scoring: exactly n_frames native rows, each the score of
the stored row that stands for it, whatever T, N*L and the stride."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from evaluate.frame_scores import native_spans, score_videos
from features.errors import UserError


class RowEcho(nn.Module):
    """Stand-in for AnomalyCLIP: p_anomaly = sigmoid(feature 0), class_probs = softmax of the
    first C features, and it records every (B, N, L, D) window it is given."""

    def __init__(self, num_segments=32, seg_length=16, n_classes=3):
        super().__init__()
        self.num_segments, self.seg_length, self.c = num_segments, seg_length, n_classes
        self.dummy = nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, x):                                   # x (B, N, L, D)
        assert x.shape[1:3] == (self.num_segments, self.seg_length)
        self.seen.append(x.clone())
        return {"p_anomaly": torch.sigmoid(x[..., 0]),      # (B, N, L)
                "class_probs": torch.softmax(x[..., :self.c], dim=-1)}   # (B, N, L, C)


def _video(t, d=8, seed=0):
    x = np.random.default_rng(seed).normal(size=(t, d)).astype(np.float32)
    x[:, 1] = np.arange(t)                                  # feature 1 = row number
    return x


@pytest.mark.parametrize("n_frames,stride", [(1000, 1), (37, 1), (2999, 3), (1001, 7), (5, 2)])
def test_native_rows_equal_n_frames_and_follow_their_row(n_frames, stride):
    t = -(-n_frames // stride)                              # rows stored at this stride
    x = _video(t)
    frame_index = np.arange(0, n_frames, stride)
    model = RowEcho().eval()
    (got,) = list(score_videos(model, [("v", x, frame_index, n_frames, stride)]))
    assert got.n_frames == n_frames and got.class_probs.shape == (n_frames, 3)
    row_of_frame = np.arange(n_frames) // stride
    np.testing.assert_allclose(got.p_anomaly, 1 / (1 + np.exp(-x[row_of_frame, 0])), rtol=1e-6)
    np.testing.assert_allclose(got.class_probs.sum(1), 1.0, rtol=1e-5)


def test_grids_are_interleaved_and_span_the_whole_video():
    t = 1000                                                 # 2 grids of 32 x 16 (1024 rows)
    model = RowEcho().eval()
    list(score_videos(model, [("v", _video(t), np.arange(t), t, 1)]))
    grids = torch.cat(model.seen)[..., 1].long()            # (k, N, L) row numbers
    assert grids.shape == (2, 32, 16)
    for g in grids:
        starts = g[:, 0]
        # segments in time order, k*L = 32 rows apart (the last may wrap past the end)
        assert ((starts.diff() % t) == 32).all()
        assert starts[0] < 32 and (starts[0] + 31 * 32) >= t - 32   # start to end
        assert ((g.diff(dim=1) % t) == 1).all()              # L consecutive frames (wrapping)
    assert set(grids.flatten().tolist()) == set(range(t))    # every row scored


def test_several_videos_batched_keep_their_order_and_lengths():
    specs = [("a", 100, 1), ("b", 517, 2), ("c", 16, 1), ("d", 3001, 4)]
    videos = [(vid, _video(-(-n // s), seed=i), np.arange(0, n, s), n, s)
              for i, (vid, n, s) in enumerate(specs)]
    out = list(score_videos(RowEcho().eval(), videos, grid_batch=2))
    assert [(o.video_id, o.n_frames) for o in out] == [(v, n) for v, n, _ in specs]
    for o, (_, x, _, n, s) in zip(out, videos):
        np.testing.assert_allclose(o.p_anomaly[::s], 1 / (1 + np.exp(-x[:, 0])), rtol=1e-6)


def test_rows_that_do_not_cover_n_frames_are_an_error():
    assert native_spans(np.arange(0, 10, 3), 10, 3, "v").tolist() == [3, 3, 3, 1]
    with pytest.raises(UserError, match="'v' has 4 rows at stride 3 but n_frames=13 needs 5"):
        native_spans(np.arange(0, 10, 3), 13, 3, "v")
    with pytest.raises(UserError, match="re-extract"):
        native_spans(np.arange(1, 11, 3), 10, 3, "v")          # does not start at frame 0
    with pytest.raises(UserError):
        native_spans(np.arange(0, 10, 3), 9, 3, "v")           # last row beyond n_frames
