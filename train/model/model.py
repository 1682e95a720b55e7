"""AnomalyCLIP: centroid, prompts, directions, selector and temporal model in one module.

Forward on windows (the contract the scorer relies on)::

    out = model(x)          # x (B, N, L, D) float CLIP frame features, N x L grids
    out["p_anomaly"]        # (B, N, L)     s = p(anomaly) per frame
    out["class_probs"]      # (B, N, L, C)  P in store class order: P[normal] = 1 - s,
                            #               P[c] = softmax(S)_c * s for anomaly classes
    out["log_probs"]        # (B, N, L, C)  log P, computed stably (training losses)
    out["S"]                # (B, N, L, C-1) selector output, anomaly classes in store order
    out["logits"]           # (B, N, L)     temporal logit, s = sigmoid(logit)

N and L must be the values the model was built with (config ``num_segments``,
``seg_length``): the position embedding is learned per grid cell. Whole videos are scored by
the inference procedure (wrap-around padding, interleaved grids): :mod:`train.model.inference`.

In ``eval()`` mode BatchNorm uses its running statistics and the text embeddings T come from
the ``text_features`` buffer, refreshed from the prompt learner whenever ``eval()`` is
called. A model loaded from a checkpoint has no prompt learner (no CLIP needed): it uses the
saved T.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .directions import text_directions
from .prompts import PromptLearner
from .selector import Selector
from .temporal import TemporalModel

FROZEN_TOWER = "prompt_learner.encoder."      # state-dict prefix of the frozen CLIP text tower


class AnomalyCLIP(nn.Module):
    def __init__(self, class_names: list[str], normal_index: int, embed_dim: int,
                 num_segments: int, seg_length: int, width: int, depth: int, heads: int,
                 concat_selector: bool, centroid: torch.Tensor | None = None,
                 prompt_learner: PromptLearner | None = None,
                 selector_logit: bool = False):
        super().__init__()
        c = len(class_names)
        self.class_names = list(class_names)
        self.normal_index = normal_index
        self.num_segments, self.seg_length = num_segments, seg_length
        self.concat_selector = concat_selector
        m = torch.zeros(embed_dim) if centroid is None else centroid.float()
        self.register_buffer("centroid", m.clone())                         # (D,)
        self.register_buffer("text_features", torch.zeros(c, embed_dim))  # (C, D) T
        self.prompt_learner = prompt_learner
        self.selector = Selector(c - 1)
        in_dim = embed_dim + (c - 1 if concat_selector else 0)
        self.temporal = TemporalModel(in_dim, width, depth, heads, num_segments, seg_length)
        # custom preset: the temporal logit plus a learned affine map of max_c S, so that
        # s starts from what the (data-started) directions already find
        self.selector_logit = selector_logit
        if selector_logit:
            self.selector_scale = nn.Parameter(torch.tensor(1.0))
            self.selector_bias = nn.Parameter(torch.tensor(-3.0))
        if prompt_learner is not None:
            self.refresh_text()

    # -- text -------------------------------------------------------------------------
    @torch.no_grad()
    def refresh_text(self) -> None:
        """Store the prompt learner's current T in the ``text_features`` buffer."""
        if self.prompt_learner is not None:
            self.text_features.copy_(self.prompt_learner())

    def train(self, mode: bool = True):
        super().train(mode)
        if not mode:
            self.refresh_text()
        return self

    def text(self) -> torch.Tensor:
        """T (C, D): live from the prompts while training, else the stored buffer."""
        if self.training and self.prompt_learner is not None:
            return self.prompt_learner()
        return self.text_features

    def directions(self) -> torch.Tensor:
        return text_directions(self.text(), self.centroid, self.normal_index)   # (C-1, D)

    # -- forward -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        # x (B, N, L, D)
        centred = x - self.centroid                                            # (B, N, L, D)
        S = self.selector(centred, self.directions())                          # (B, N, L, C-1)
        feats = torch.cat([S, centred], dim=-1) if self.concat_selector else centred
        logits = self.temporal(feats)                                          # (B, N, L)
        if self.selector_logit:
            logits = logits + self.selector_scale * S.max(-1).values + self.selector_bias
        log_probs = class_log_probs(S, logits, self.normal_index)              # (B, N, L, C)
        return {"p_anomaly": torch.sigmoid(logits), "class_probs": log_probs.exp(),
                "log_probs": log_probs, "S": S, "logits": logits}


def class_log_probs(S: torch.Tensor, logits: torch.Tensor, normal_index: int) -> torch.Tensor:
    """log P with P[normal] = 1 - s, P[c] = softmax(S)_c * s, s = sigmoid(logits).

    S (..., C-1), logits (...) -> (..., C), Normal inserted at ``normal_index``.
    """
    log_s = F.logsigmoid(logits).unsqueeze(-1)                     # (..., 1) log s
    log_not_s = F.logsigmoid(-logits).unsqueeze(-1)                # (..., 1) log(1 - s)
    anomaly = F.log_softmax(S, dim=-1) + log_s                     # (..., C-1)
    return torch.cat([anomaly[..., :normal_index], log_not_s, anomaly[..., normal_index:]], -1)
