"""Published AnomalyCLIP hyper-parameters per dataset (docs/method.md, Training / Model),
and the ``custom`` preset for every other dataset.

A preset fills the :class:`train.config.TrainConfig` fields below; every field can still be
overridden from a config file or ``--set key=value``. Each paper preset also names the
classes it was published with (the dataset adapters' lists), so a store labelled for
another dataset is caught before training. The custom preset has no class list; it starts
the directions from the data as well as the text and sizes the run to the dataset
(:func:`custom_schedule`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from features.datasets import shanghaitech, ucf_crime, xd_violence
from features.errors import UserError
from features.schema import NORMAL_CLASS


@dataclass(frozen=True)
class Preset:
    name: str
    params: dict                       # TrainConfig fields
    class_names: tuple[str, ...]       # incl. Normal, as the dataset names them
    alternatives: tuple = ()           # other accepted class lists (checked by name)


PRESETS = {
    "ucf-crime": Preset(
        "ucf-crime",
        dict(lr=1e-5, warmup_epochs=5, epochs=50, width=256, depth=1, concat_selector=False),
        tuple(ucf_crime.CLASS_NAMES)),
    "xd-violence": Preset(
        "xd-violence",
        dict(lr=5e-6, warmup_epochs=5, epochs=50, width=128, depth=1, concat_selector=False),
        tuple(xd_violence.CLASS_NAMES)),
    # The 17 classes of the reference implementation's label map, by name; or the
    # detection-only labelling (`pipeline label --dataset shanghaitech` without a class map:
    # every abnormal video is "Anomaly").
    "shanghaitech": Preset(
        "shanghaitech",
        dict(lr=5e-4, warmup_epochs=10, epochs=100, width=256, depth=2, concat_selector=True),
        tuple(shanghaitech.CLASS_NAMES), alternatives=(("Anomaly", NORMAL_CLASS),)),
}
PAPER_PRESETS = tuple(PRESETS)
CUSTOM = "custom"

# The custom preset. What it changes, and why, measured by bench/weak_prior.py (docs/training.md,
# "Your own dataset: the custom preset"): on a dataset of a few hundred videos the paper
# presets' lr 1e-5 for ~300 steps learns nothing, and S picks random segments whenever
# CLIP's text does not point at the anomalies; 300 steps at lr 1e-3 with the directions
# started between the text and the training data's class contrasts learn in both cases.
CUSTOM_TARGET_STEPS = 300          # optimisation steps a run aims at, whatever its size
CUSTOM_EPOCHS = (20, 200)          # ... within these epochs
CUSTOM_VALIDATIONS = 25            # validations per run (val_every = epochs // this)
# Issue 24 (hard data: anomalies neither novel nor named by the text): directions started
# off the normal manifold (direction_init=residual), the temporal model fed [S, x - m]
# (concat_selector) and its logit given a learned affine map of max_c S (selector_logit).
PRESETS[CUSTOM] = Preset(CUSTOM, dict(lr=1e-3, direction_init="residual", concat_selector=True,
                                      selector_logit=True), ())


def custom_schedule(steps_per_epoch: int, epochs: int | None = None) -> dict:
    """Epochs, warm-up and validation interval of the custom preset for a dataset whose
    epoch is ``steps_per_epoch`` steps: about CUSTOM_TARGET_STEPS steps in all, 10% of them
    warm-up, about CUSTOM_VALIDATIONS validations (``epochs``: fixed by the user)."""
    lo, hi = CUSTOM_EPOCHS
    epochs = epochs or min(max(math.ceil(CUSTOM_TARGET_STEPS / steps_per_epoch), lo), hi)
    return {"epochs": epochs, "warmup_epochs": round(epochs / 10, 1),
            "val_every": max(1, epochs // CUSTOM_VALIDATIONS)}


def get_preset(name: str) -> Preset:
    if not isinstance(name, str) or name not in PRESETS:
        raise UserError(f"--preset {name}: unknown preset; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def _norm(name: str) -> str:
    """Compare class names ignoring case, spaces, underscores and hyphens."""
    return re.sub(r"[\s_\-]", "", name).lower()


def check_classes(preset: Preset, store_classes: list[str], store_path) -> None:
    """Raise UserError when the store's classes do not fit the preset."""
    if not preset.class_names:                      # the custom preset: any classes
        return
    for names in preset.alternatives:
        if sorted(map(_norm, names)) == sorted(map(_norm, store_classes)):
            return
    if len(store_classes) != len(preset.class_names):
        raise UserError(
            f"{store_path}: store has {len(store_classes)} classes ({', '.join(store_classes)}) "
            f"but preset {preset.name} expects {len(preset.class_names)}; pick the preset of the "
            "dataset the store was labelled with, or train without --preset")
    want = {_norm(c) for c in preset.class_names}
    extra = [c for c in store_classes if _norm(c) not in want]
    if extra:
        raise UserError(
            f"{store_path}: classes {', '.join(extra)} are not in preset {preset.name} "
            f"({', '.join(preset.class_names)}); pick the matching preset or train without "
            "--preset")
