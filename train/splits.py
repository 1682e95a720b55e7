"""Which videos train and which validate; the label checks that stop a run early.

The test split is never read here. Validation is the store's ``val`` split when it has one;
otherwise a stratified, seeded fraction of the training videos is carved off in memory (the
store is not modified) and recorded in the run's config.json.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from features.datasets.validation import carve_validation
from features.errors import UserError
from features.schema import NORMAL_CLASS

log = logging.getLogger("pipeline")


@dataclass
class Split:
    train: pd.DataFrame           # rows of store.metadata()
    val: pd.DataFrame
    val_source: str               # "store" (val split) | "carved" (from train) | "none"
    class_names: list[str]        # all classes incl. Normal, store order
    normal_class: str

    @property
    def normal_index(self) -> int:
        return self.class_names.index(self.normal_class)


def split_off_validation(train: pd.DataFrame, fraction: float, seed: int):
    """(train, val) rows: the training rows split in two by the stratified, seeded carving of
    :func:`features.datasets.validation.carve_validation`, the same draw ``pipeline label
    --val-fraction`` makes, so a store labelled with a val split and a run carving its own
    from the same training videos (same fraction and seed) validate on the same videos."""
    is_val = carve_validation(train, fraction, seed)["split"] == "val"
    return train[~is_val].reset_index(drop=True), train[is_val].reset_index(drop=True)


def training_split(store, val_fraction: float, val_seed: int) -> Split:
    """Check the store's labels and return the train / validation videos."""
    path = store.path
    class_names = store.class_names
    normal_class = store.attrs.get("normal_class", NORMAL_CLASS)
    meta = store.metadata()
    if not class_names or meta.empty or meta["split"].isna().all():
        raise UserError(f"{path}: the store has no labels; attach them with `pipeline label "
                        f"{path} --dataset ... --annotations ...` before training")
    if getattr(store, "n_crops", None):
        raise UserError(f"{path}: embeddings have {store.n_crops} crops per row; stage two "
                        "trains on one crop: re-import with `pipeline import --crop 0`")
    if normal_class not in class_names:
        raise UserError(f"{path}: class list {class_names} has no normal class "
                        f"{normal_class!r}; re-label the store")
    empty = meta["n_rows"].fillna(0).astype(int) < 1
    if empty.any():
        log.warning("%s: skipping %d videos without rows: %s", path, int(empty.sum()),
                    ", ".join(meta.loc[empty, "video_id"][:5]))
        meta = meta[~empty]
    train = meta[meta["split"] == "train"].reset_index(drop=True)
    unknown = sorted(set(train["class_name"].dropna()) - set(class_names))
    if unknown or train["class_name"].isna().any():
        raise UserError(f"{path}: training videos with classes not in the store's class list "
                        f"({', '.join(map(str, unknown)) or 'missing'}); re-label the store")
    for what, rows in (("normal", train["class_name"] == normal_class),
                       ("abnormal", train["class_name"] != normal_class)):
        if not rows.any():
            raise UserError(f"{path}: no {what} training videos (split=train); weakly "
                            "supervised training needs both normal and abnormal videos")
    val = meta[meta["split"] == "val"].reset_index(drop=True)
    source = "store"
    if val.empty:
        if val_fraction > 0:
            train, val = split_off_validation(train, val_fraction, val_seed)
            source = "carved"
        else:
            source = "none"
    for what, rows in (("normal", train["class_name"] == normal_class),
                       ("abnormal", train["class_name"] != normal_class)):
        if not rows.any():
            raise UserError(f"{path}: carving validation left no {what} training videos; "
                            "lower --set val_fraction=... or add videos")
    return Split(train, val, source, class_names, normal_class)
