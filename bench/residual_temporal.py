"""The temporal model this project used before the reference's reversible one, kept as the
baseline of bench/temporal_memory.py and bench/temporal_quality.py (not a training option):
plain residual layers (segment attention, frame attention, ONE conv feed-forward with an
nn.LayerNorm), positions initialised at 0.02 scale; 5.4 M parameters at in_dim 512, E 256,
N 32, L 16, depth 1.

:func:`residual_model` makes every AnomalyCLIP built in this process use it, so a bench
trains and scores it through the real code paths (one process: no Dask workers).
"""
from __future__ import annotations

from unittest import mock

import torch
from torch import nn

import train.model.model
from train.model.temporal import AxisAttention, ConvFeedForward


class ResidualLayer(nn.Module):
    """x += seg_attn(x); x += frame_attn(x); x += ff(x)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.segment_attn = AxisAttention(width, heads, axis=1)
        self.frame_attn = AxisAttention(width, heads, axis=2)
        self.ff = ConvFeedForward(width)
        self.ff.norm = nn.LayerNorm(width)              # the earlier model's norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, N, L, E) -> (B, N, L, E)
        x = x + self.segment_attn(x)
        x = x + self.frame_attn(x)
        return x + self.ff(x)


class ResidualTemporalModel(nn.Module):
    """(B, N, L, in_dim) features -> (B, N, L) anomaly logits, the earlier way."""

    def __init__(self, in_dim: int, width: int, depth: int, heads: int, num_segments: int,
                 seg_length: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, width)
        self.pos_segment = nn.Parameter(torch.randn(num_segments, 1, width) * 0.02)
        self.pos_frame = nn.Parameter(torch.randn(1, seg_length, width) * 0.02)
        self.layers = nn.Sequential(*(ResidualLayer(width, heads) for _ in range(depth)))
        self.head_norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, N, L, in_dim) -> logits (B, N, L)
        h = self.proj(x) + self.pos_segment + self.pos_frame          # (B, N, L, E)
        return self.head(self.head_norm(self.layers(h))).squeeze(-1)


def residual_model():
    """Context: AnomalyCLIP builds :class:`ResidualTemporalModel` instead of the reversible."""
    return mock.patch.object(train.model.model, "TemporalModel", ResidualTemporalModel)
