"""The selector: batch-normalised scalar projections of centred frames on the directions."""
from __future__ import annotations

import torch
from torch import nn


class Selector(nn.Module):
    """S = BatchNorm1d_{C-1, affine=False}((x - m) . d^T).

    No learnable parameters; only the BatchNorm running statistics, which inference uses.
    """

    def __init__(self, n_anomaly_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(n_anomaly_classes, affine=False)

    def forward(self, centred: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        # centred (..., D), directions (C-1, D) -> S (..., C-1)
        proj = centred @ directions.T                            # (..., C-1) scalar projections
        flat = proj.reshape(-1, proj.shape[-1])                  # (frames, C-1)
        return self.norm(flat).reshape(proj.shape)
