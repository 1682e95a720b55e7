"""The temporal model: an axial Transformer over the N x L grid of a window (docs/method.md).

The reference's model is lucidrains'
``AxialImageTransformer(dim=E, depth, heads=8, reversible=True,
axial_pos_emb_shape=(N, L))``, written here from its description:

- input Linear(in_dim -> E), plus an axial position embedding: one learned E-vector per
  segment and one per frame-in-segment, each initialised N(0, 1);
- each layer is two reversible blocks on two streams (:mod:`train.model.reversible`): first
  f = self-attention along the segment axis (N tokens: long-term), g = self-attention along
  the frame axis (L tokens: short-term); then f and g = two separate conv feed-forwards.
  The input is duplicated into both streams and the output is the mean of the streams;
- attention: pre-norm LayerNorm, ``heads`` heads of E / heads, q and kv projections without
  bias, output projection with bias; conv feed-forward: channel LayerNorm -> 3x3 conv
  E -> 4E -> LeakyReLU -> 3x3 conv 4E -> E over the (N, L) grid;
- head: LayerNorm -> Linear(E -> 1); the model returns the logit, p(anomaly) = sigmoid.

Parameters: in_dim*E + E (input) + (N + L)*E (positions) + depth * (152 E^2 + 20 E)
+ 3E + 1 (head): 10,110,977 at in_dim 512, E 256, N 32, L 16, depth 1.

The plain residual stack this project used before lives in ``bench/residual_temporal.py``,
the baseline of ``bench/temporal_memory.py`` and ``bench/temporal_quality.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .reversible import ReversibleBlock, ReversibleStack

class AxisAttention(nn.Module):
    """Pre-norm multi-head self-attention along one axis of a (B, N, L, E) grid."""

    def __init__(self, width: int, heads: int, axis: int):
        super().__init__()
        self.heads, self.axis = heads, axis
        self.norm = nn.LayerNorm(width)
        self.q = nn.Linear(width, width, bias=False)
        self.kv = nn.Linear(width, 2 * width, bias=False)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, N, L, E) -> (B, N, L, E), attention among the tokens of `axis` (1: N, 2: L)
        h = self.norm(x)
        if self.axis == 1:
            h = h.transpose(1, 2)                                   # (B, L, N, E)
        b, rows, seq, e = h.shape
        split = (b * rows, seq, self.heads, e // self.heads)
        q = self.q(h).reshape(split)
        k, v = self.kv(h).reshape(b * rows, seq, 2, self.heads, e // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))            # (B*rows, heads, seq, E/h)
        a = F.scaled_dot_product_attention(q, k, v)                 # softmax(q k^T / sqrt(E/h)) v
        a = self.out(a.transpose(1, 2).reshape(b, rows, seq, e))    # (B, rows, seq, E)
        return a.transpose(1, 2) if self.axis == 1 else a


class ChannelNorm(nn.Module):
    """The reference's channel LayerNorm: (x - mean) / (std + eps) * g + b over E.

    (std is the biased standard deviation and eps is added to it, not to the variance as
    nn.LayerNorm does.)
    """

    def __init__(self, width: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.g = nn.Parameter(torch.ones(width))
        self.b = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (..., E)
        mean = x.mean(-1, keepdim=True)
        std = x.var(-1, unbiased=False, keepdim=True).sqrt()
        return (x - mean) / (std + self.eps) * self.g + self.b


class ConvFeedForward(nn.Module):
    """Channel norm -> 3x3 conv E->4E -> LeakyReLU -> 3x3 conv 4E->E over the (N, L) grid."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = ChannelNorm(width)
        self.conv = nn.Sequential(
            nn.Conv2d(width, 4 * width, 3, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(4 * width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, N, L, E) -> (B, N, L, E)
        return self.conv(self.norm(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def reversible_layer(width: int, heads: int) -> list[ReversibleBlock]:
    """One layer of the reference: (segment attention, frame attention), (ff, ff)."""
    segment, frame = AxisAttention(width, heads, axis=1), AxisAttention(width, heads, axis=2)
    return [ReversibleBlock(segment, frame),
            ReversibleBlock(ConvFeedForward(width), ConvFeedForward(width))]


class TemporalModel(nn.Module):
    """(B, N, L, in_dim) features -> (B, N, L) anomaly logits."""

    def __init__(self, in_dim: int, width: int, depth: int, heads: int, num_segments: int,
                 seg_length: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, width)
        self.pos_segment = nn.Parameter(torch.randn(num_segments, 1, width))  # (N, 1, E)
        self.pos_frame = nn.Parameter(torch.randn(1, seg_length, width))      # (1, L, E)
        self.layers = ReversibleStack([b for _ in range(depth)
                                       for b in reversible_layer(width, heads)])
        self.head_norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, N, L, in_dim) -> logits (B, N, L)
        h = self.proj(x) + self.pos_segment + self.pos_frame          # (B, N, L, E)
        h = self.layers(h)                                             # (B, N, L, E)
        return self.head(self.head_norm(h)).squeeze(-1)
