"""Published AnomalyCLIP hyper-parameters per dataset (docs/method.md, Training / Model).

A preset fills the :class:`train.config.TrainConfig` fields below; every field can still be
overridden from a config file or ``--set key=value``. Each preset also names the classes it
was published with (the dataset adapters' lists), so a store labelled for another dataset
is caught before training.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from features.datasets import shanghaitech, ucf_crime, xd_violence
from features.errors import UserError


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
        tuple(shanghaitech.CLASS_NAMES), alternatives=(("Anomaly", "Normal"),)),
}


def get_preset(name: str) -> Preset:
    if not isinstance(name, str) or name not in PRESETS:
        raise UserError(f"--preset {name}: unknown preset; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def _norm(name: str) -> str:
    """Compare class names ignoring case, spaces, underscores and hyphens."""
    return re.sub(r"[\s_\-]", "", name).lower()


def check_classes(preset: Preset, store_classes: list[str], store_path) -> None:
    """Raise UserError when the store's classes do not fit the preset."""
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
