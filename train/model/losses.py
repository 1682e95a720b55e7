"""MIL segment selection and the seven AnomalyCLIP loss terms (plain weighted sum).

Selection (no gradient through the indices): a segment's score is the sum of S over its L
frames. Each segment can be selected with probability ``keep_prob`` (one mask per video,
shared by top-k and bottom-k; a video with fewer than k selectable segments keeps all).
Abnormal video: top-k and bottom-k segments on the S column of its class. Normal video:
top-k segments by the sum over all classes.

Beyond the paper, for when S does not find the anomalies (CLIP's text does not point at
them): ``select_by="temporal"`` scores segments by the sum of the temporal model's logits
instead, ``"blend"`` by the sum of both scores, each standardised over the video's
segments; ``lambda_rank > 0`` adds an eighth term, the MIL ranking hinge of Sultani et al.
``mean over (abnormal i, normal j) of max(0, 1 - a_i + n_j)``, a_i / n_j the mean
p(anomaly) over a video's selected top-k frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

TERMS = ("dir_abn", "dir_nor", "topk_abn", "bottomk_abn", "topk_nor", "smooth", "sparse")


@dataclass
class Selection:
    top_abn: torch.Tensor      # (Ba, k) segment indices of abnormal videos, highest scores
    bottom_abn: torch.Tensor   # (Ba, k) lowest scores
    top_nor: torch.Tensor      # (Bn, k) segment indices of normal videos


def anomaly_column(class_index: torch.Tensor, normal_index: int) -> torch.Tensor:
    """Store class index -> column of S (Normal has no column)."""
    return class_index - (class_index > normal_index).long()


def _standardise(seg: torch.Tensor) -> torch.Tensor:
    """(B, N) segment scores -> zero mean, unit variance over each video's segments."""
    return (seg - seg.mean(1, keepdim=True)) / (seg.std(1, keepdim=True) + 1e-6)


def segment_scores(S: torch.Tensor, class_index: torch.Tensor, normal_index: int,
                   logits: torch.Tensor | None = None, select_by: str = "selector"):
    """(abnormal (Ba, N), normal (Bn, N)) segment scores that selection ranks, detached.

    S (B, N, L, C-1); logits (B, N, L), needed unless ``select_by="selector"``."""
    abnormal = class_index != normal_index
    n = S.shape[1]
    seg = S.detach().sum(dim=2)                                        # (B, N, C-1)
    col = anomaly_column(class_index[abnormal], normal_index)           # (Ba,)
    abn = seg[abnormal].gather(2, col.view(-1, 1, 1).expand(-1, n, 1)).squeeze(2)  # (Ba, N)
    nor = seg[~abnormal].sum(-1)                                       # (Bn, N)
    if select_by == "selector":
        return abn, nor
    own = logits.detach().sum(dim=2)                                   # (B, N)
    if select_by == "temporal":
        return own[abnormal], own[~abnormal]
    return (_standardise(abn) + _standardise(own[abnormal]),
            _standardise(nor) + _standardise(own[~abnormal]))


def select_segments(S: torch.Tensor, class_index: torch.Tensor, normal_index: int, k: int,
                    keep_prob: float, generator: torch.Generator | None = None,
                    logits: torch.Tensor | None = None, select_by: str = "selector") -> Selection:
    """S (B, N, L, C-1), class_index (B,) -> top/bottom-k segment indices per video."""
    b, n = S.shape[:2]
    keep = torch.rand(b, n, generator=generator) < keep_prob           # (B, N) on CPU
    keep[keep.sum(1) < k] = True
    keep = keep.to(S.device)
    abnormal = class_index != normal_index
    abn, nor = segment_scores(S, class_index, normal_index, logits, select_by)
    inf = torch.tensor(float("inf"), device=S.device)
    keep_a, keep_n = keep[abnormal], keep[~abnormal]
    return Selection(
        top_abn=torch.where(keep_a, abn, -inf).topk(k, dim=1).indices,
        bottom_abn=torch.where(keep_a, abn, inf).topk(k, dim=1, largest=False).indices,
        top_nor=torch.where(keep_n, nor, -inf).topk(k, dim=1).indices)


def gather_segments(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """t (B, N, L, ...) , idx (B, k) -> (B, k, L, ...)."""
    shape = idx.shape + t.shape[2:]
    index = idx.view(*idx.shape, *([1] * (t.dim() - 2))).expand(shape)
    return t.gather(1, index)


def rank_hinge(s: torch.Tensor, abnormal: torch.Tensor, sel: Selection) -> torch.Tensor:
    """MIL ranking: mean over (abnormal i, normal j) of max(0, 1 - a_i + n_j), a_i and n_j
    the mean p(anomaly) of the frames of video i's / j's selected top-k segments."""
    a = gather_segments(s[abnormal], sel.top_abn).flatten(1).mean(1)    # (Ba,)
    n = gather_segments(s[~abnormal], sel.top_nor).flatten(1).mean(1)   # (Bn,)
    return torch.relu(1 - a[:, None] + n[None, :]).mean()


def anomaly_clip_loss(out: dict, class_index: torch.Tensor, normal_index: int, config,
                      generator: torch.Generator | None = None, select_by: str = "selector"):
    """Total loss and its terms for a batch with abnormal and normal videos.

    out: the model's forward dict on (B, N, L, D) windows; class_index (B,) store class of
    each video; ``select_by``: what ranks the segments (the caller switches it after
    warm-up). Returns (total, {term: float}): the seven terms, plus ``rank`` when
    ``config.lambda_rank > 0``.
    """
    S, log_p, s = out["S"], out["log_probs"], out["p_anomaly"]
    abnormal = class_index != normal_index
    sel = select_segments(S, class_index, normal_index, config.topk, config.keep_prob, generator,
                          out.get("logits"), select_by)
    y = class_index[abnormal]                                          # (Ba,)
    col = anomaly_column(y, normal_index)

    S_abn_top = gather_segments(S[abnormal], sel.top_abn)              # (Ba, k, L, C-1)
    own = S_abn_top.gather(3, col.view(-1, 1, 1, 1).expand(*S_abn_top.shape[:3], 1))
    dir_abn = -own.mean()
    dir_nor = S[~abnormal].max(dim=-1).values.mean()

    lp_abn = log_p[abnormal]                                           # (Ba, N, L, C)
    lp_top = gather_segments(lp_abn, sel.top_abn)                      # (Ba, k, L, C)
    topk_abn = -lp_top.gather(3, y.view(-1, 1, 1, 1).expand(*lp_top.shape[:3], 1)).mean()
    bottomk_abn = -gather_segments(lp_abn, sel.bottom_abn)[..., normal_index].mean()
    topk_nor = -gather_segments(log_p[~abnormal], sel.top_nor)[..., normal_index].mean()

    s_abn = s[abnormal].flatten(1)                                     # (Ba, N*L) frame order
    smooth = ((s_abn[:, 1:] - s_abn[:, :-1]) ** 2).sum()
    sparse = s_abn.mean()

    terms = {
        "dir_abn": config.lambda_dir_abn * dir_abn,
        "dir_nor": config.lambda_dir_nor * dir_nor,
        "topk_abn": config.lambda_topk_abn * topk_abn,
        "bottomk_abn": config.lambda_bottomk_abn * bottomk_abn,
        "topk_nor": config.lambda_topk_nor * topk_nor,
        "smooth": config.lambda_smooth * smooth,
        "sparse": config.lambda_sparse * sparse,
    }
    if getattr(config, "lambda_rank", 0) > 0:
        terms["rank"] = config.lambda_rank * rank_hinge(s, abnormal, sel)
    total = sum(terms.values())
    values = torch.stack([v.detach() for v in terms.values()]).tolist()    # one device sync
    return total, dict(zip(terms, values))
