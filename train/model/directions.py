"""Text-driven directions: from the normal centroid towards each anomaly class's text; and
the shift of T that starts them from the training data instead (``direction_init``)."""
from __future__ import annotations

import torch


def text_directions(text: torch.Tensor, centroid: torch.Tensor, normal_index: int) -> torch.Tensor:
    """d_c = (T_c - m) / ||T_c - m|| for every class except the normal one.

    text (C, D), centroid (D,) -> (C-1, D) unit rows, in class order with Normal dropped.
    """
    keep = [i for i in range(text.shape[0]) if i != normal_index]
    offsets = text[keep] - centroid                          # (C-1, D)
    return offsets / offsets.norm(dim=-1, keepdim=True)


def data_shift(text: torch.Tensor, centroid: torch.Tensor, data: torch.Tensor,
               normal_index: int, keep_text: bool) -> torch.Tensor:
    """(C, D) shift to add to T so that each anomaly direction starts at unit(data_c), or
    with ``keep_text`` at unit(t_c + unit(data_c)) (t_c the text direction), T_c keeping
    its distance from m. text (C, D), centroid (D,), data (C-1, D) event contrasts; a
    class with a zero data row and the normal row get no shift."""
    keep = [i for i in range(text.shape[0]) if i != normal_index]
    offsets = text[keep] - centroid                                    # (C-1, D)
    radius = offsets.norm(dim=-1, keepdim=True)
    target = data / data.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    if keep_text:
        target = target + offsets / radius
        target = target / target.norm(dim=-1, keepdim=True)
    shift = torch.zeros_like(text)
    has_data = data.norm(dim=-1) > 0
    rows = torch.tensor(keep)[has_data]
    shift[rows] = (radius * target - offsets)[has_data]
    return shift
