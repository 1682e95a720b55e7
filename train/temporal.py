"""The axial temporal Transformer: frames arranged as an N x L grid per window.

Each layer attends along the segment axis (N tokens, long-term) and along the
frame-in-segment axis (L tokens, short-term), 8 heads, pre-norm, then a feed-forward of two
3x3 convolutions over the (N, L) grid (E -> 4E -> E, LeakyReLU, channel LayerNorm first).
Plain residual blocks (the reference uses reversible ones; see bench/train_time.py for the
memory this costs). A learned axial position embedding (one vector per segment plus one per
frame-in-segment) is added to the input projection. Head: LayerNorm -> Linear(E -> 1); the
model returns the logit, p(anomaly) = sigmoid(logit).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AxisAttention(nn.Module):
    """Pre-norm multi-head self-attention along one axis of a (B, N, L, E) grid."""

    def __init__(self, width: int, heads: int, axis: int):
        super().__init__()
        self.heads, self.axis = heads, axis
        self.norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, N, L, E) -> (B, N, L, E), attention among the tokens of `axis` (1: N, 2: L)
        h = self.norm(x)
        if self.axis == 1:
            h = h.transpose(1, 2)                                   # (B, L, N, E)
        b, rows, seq, e = h.shape
        q, k, v = self.qkv(h).reshape(b * rows, seq, 3, self.heads, e // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))            # (B*rows, heads, seq, E/h)
        a = F.scaled_dot_product_attention(q, k, v)                 # (B*rows, heads, seq, E/h)
        a = self.out(a.transpose(1, 2).reshape(b, rows, seq, e))    # (B, rows, seq, E)
        return a.transpose(1, 2) if self.axis == 1 else a


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a (B, E, N, L) map."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvFeedForward(nn.Module):
    """Channel LayerNorm -> 3x3 conv E->4E -> LeakyReLU -> 3x3 conv 4E->E over the grid."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(
            ChannelLayerNorm(width),
            nn.Conv2d(width, 4 * width, 3, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(4 * width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, N, L, E) -> (B, N, L, E)
        return self.net(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class AxialLayer(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.segment_attn = AxisAttention(width, heads, axis=1)
        self.frame_attn = AxisAttention(width, heads, axis=2)
        self.ff = ConvFeedForward(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.segment_attn(x)
        x = x + self.frame_attn(x)
        return x + self.ff(x)


class TemporalModel(nn.Module):
    """(B, N, L, in_dim) features -> (B, N, L) anomaly logits."""

    def __init__(self, in_dim: int, width: int, depth: int, heads: int, num_segments: int,
                 seg_length: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, width)
        self.pos_segment = nn.Parameter(torch.randn(num_segments, 1, width) * 0.02)  # (N, 1, E)
        self.pos_frame = nn.Parameter(torch.randn(1, seg_length, width) * 0.02)      # (1, L, E)
        self.layers = nn.ModuleList(AxialLayer(width, heads) for _ in range(depth))
        self.head_norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, N, L, in_dim) -> logits (B, N, L)
        h = self.proj(x) + self.pos_segment + self.pos_frame          # (B, N, L, E)
        for layer in self.layers:
            h = layer(h)
        return self.head(self.head_norm(h)).squeeze(-1)
