"""The two training protocols: which videos train, how many steps an epoch has, the schedule.

``validated`` (the default, ours): validation videos are the store's ``split=val`` or a
stratified share carved from the training videos; the checkpoint kept is the epoch with the
best validation metric; the learning rate moves every step (linear warm-up, cosine to 0 at
the last step); an epoch is every video of the larger class once (``ceil``).

``reference`` (the reference implementation's protocol, for reproducing the paper):

- every video of the training lists trains, nothing is held out. In a store labelled with
  ``--val-fraction`` > 0 the ``val`` videos were carved from the training lists
  (``val_carved``), so they train too; a ``val`` split that came with the annotations (a
  manifest's own) is not a training list and stays out, neither trained nor validated on;
- no validation, and the LAST epoch is kept;
- the learning rate is set per EPOCH (LambdaLR stepped once an epoch): factor
  ``epoch / warmup`` during warm-up (epoch 0 trains at lr 0), then
  ``(1 + cos(pi * (epoch - warmup) / (epochs - warmup))) / 2``, which reaches 0 only
  after the last epoch;
- an epoch lasts ``floor(larger class / half batch)`` steps (the reference's loaders drop
  the last incomplete batch: UCF-Crime 25, XD-Violence 64, ShanghaiTech 5).
"""
from __future__ import annotations

import logging
import math

import pandas as pd

from .config import TrainConfig
from .splits import Split, training_split

log = logging.getLogger("pipeline")


def reference_lr_factor(epoch: int, warmup_epochs: float, epochs: int) -> float:
    """The reference's learning-rate factor for ``epoch`` (0-based), constant within it."""
    if epoch < warmup_epochs:
        return epoch / warmup_epochs
    span = max(epochs - warmup_epochs, 1e-12)
    return 0.5 * (1 + math.cos(math.pi * min((epoch - warmup_epochs) / span, 1.0)))


def steps_per_epoch(n_abnormal: int, n_normal: int, half: int, protocol: str) -> int:
    """Steps of one epoch: every video of the larger class once (validated, rounded up) or
    only the complete half-batches of it (reference, rounded down; at least one)."""
    larger = max(n_abnormal, n_normal)
    if protocol == "reference":
        return max(1, larger // half)
    return math.ceil(larger / half)


def run_split(store, config: TrainConfig) -> Split:
    """The training and validation videos of a run under ``config.protocol``."""
    if config.protocol != "reference":
        return training_split(store, config.val_fraction, config.val_seed)
    split = training_split(store, 0.0, config.val_seed)
    val = split.val
    if len(val) and bool(store.attrs.get("val_carved", False)):
        log.info("protocol reference: the %d val videos were carved from the training lists "
                 "at labelling; they train too", len(val))
        train = pd.concat([split.train, val], ignore_index=True)
    else:
        if len(val):
            log.info("protocol reference: %d val videos (given by the annotations, not carved "
                     "from the training lists) are left out", len(val))
        train = split.train
    return Split(train, val.iloc[0:0], "none", split.class_names, split.normal_class)
