"""The validation split: training videos set aside for model selection.

Stage two selects checkpoints on ``split == "val"`` only, never on the test set. The
validation videos are drawn from the training videos, per class (stratified), with a
seeded generator; test videos are never touched.

Per class of ``n`` training videos, ``round(fraction * n)`` go to validation, at most
``n - 1`` so every class keeps a training video (a class of one video stays in train).
The draw of one class depends only on the seed, the class name and that class's video
ids, so adding videos of one class does not reshuffle the others.
"""
from __future__ import annotations

import numbers
import zlib

import numpy as np
import pandas as pd

from ..errors import UserError


def check_fraction(fraction: float) -> float:
    if not 0.0 <= fraction < 1.0:
        raise UserError(f"--val-fraction {fraction}: must be at least 0 and below 1 (the share "
                        "of training videos per class set aside for validation)")
    return float(fraction)


def carve_validation(labels: pd.DataFrame, fraction: float, seed: int = 0) -> pd.DataFrame:
    """Return a copy of ``labels`` (columns video_id, split, class_name) where a stratified,
    seeded ``fraction`` of the train rows has split "val"."""
    check_fraction(fraction)
    if not isinstance(seed, numbers.Integral) or not 0 <= seed < 2 ** 63:
        raise UserError(f"--val-seed {seed}: the seed of the validation draw must be an integer in "
                        "[0, 2**63)")
    out = labels.copy()
    train = out[out["split"] == "train"]
    for name, group in train.groupby("class_name", sort=True):
        n_val = min(int(round(fraction * len(group))), len(group) - 1)
        if n_val <= 0:
            continue
        ids = np.array(sorted(group["video_id"]))
        rng = np.random.default_rng([seed, zlib.crc32(str(name).encode())])
        chosen = set(rng.choice(ids, size=n_val, replace=False))
        out.loc[out["video_id"].isin(chosen) & (out["split"] == "train"), "split"] = "val"
    return out
