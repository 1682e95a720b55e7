"""Text-driven directions: from the normal centroid towards each anomaly class's text."""
from __future__ import annotations

import torch


def text_directions(text: torch.Tensor, centroid: torch.Tensor, normal_index: int) -> torch.Tensor:
    """d_c = (T_c - m) / ||T_c - m|| for every class except the normal one.

    text (C, D), centroid (D,) -> (C-1, D) unit rows, in class order with Normal dropped.
    """
    keep = [i for i in range(text.shape[0]) if i != normal_index]
    offsets = text[keep] - centroid                          # (C-1, D)
    return offsets / offsets.norm(dim=-1, keepdim=True)
