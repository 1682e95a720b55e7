"""Is a run learning? One warning line when, after warm-up, it is no better than chance.

AnomalyCLIP learns from the segments its selector S ranks highest. When CLIP's text does
not point at a dataset's anomalies (class names CLIP has no picture of, events that look
like everyday scenes), those segments are random frames and every loss term trains on
noise while the loss still falls. Validation measures it (:mod:`train.validate`):
``selector_video_auc`` (does S rank each class's videos above normal ones?) and
``video_auc`` (does the temporal score?). When neither is more than ``CHANCE_MARGIN``
above 0.5 at the end of warm-up, the run is said to sit at chance.
"""
from __future__ import annotations

import math

CHANCE_MARGIN = 0.15
DIAGNOSTICS = ("selector_video_auc", "video_auc")
REMEDY = ("start the directions from the data and raise the learning rate (docs/training.md, 'When a "
          "run sits at chance'): --preset custom, or --set direction_init=text+data "
          "--set lr=1e-3")
# for a run that already has both: what docs/training.md says to look at next
NEXT = ("check the labels (a class whose videos do not show its event cannot be found) and "
        "that the normal videos come from the same cameras, or try a --sweep lr=3e-4,1e-3,3e-3 "
        "(docs/training.md, 'When a run sits at chance')")


def at_chance(metrics: dict) -> bool:
    """True when every defined diagnostic is within ``CHANCE_MARGIN`` of 0.5 or below."""
    values = [metrics.get(k) for k in DIAGNOSTICS]
    values = [v for v in values if v is not None and not math.isnan(v)]
    return bool(values) and max(values) < 0.5 + CHANCE_MARGIN


def chance_warning(metrics: dict, epoch: int, config=None) -> str | None:
    """The one-line warning for a run at chance after ``epoch``, else None. Its remedy is
    the custom preset's two changes, or, for a run (``config``) that has them, what next."""
    if not at_chance(metrics):
        return None
    shown = ", ".join(f"{k} {metrics[k]:.2f}" for k in DIAGNOSTICS
                      if metrics.get(k) is not None and not math.isnan(metrics[k]))
    return (f"after warm-up (epoch {epoch}) validation is no better than chance ({shown}): "
            f"the segments the selector picks are not the anomalous ones, so training learns "
            f"from noise; {NEXT if _has_remedy(config) else REMEDY}")


def _has_remedy(config) -> bool:
    return (config is not None and config.direction_init != "text"
            and config.lr >= 1e-3)
