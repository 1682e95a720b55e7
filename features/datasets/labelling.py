"""Match a dataset's annotations to the videos of a feature store, check, split, write.

Everything is checked before anything is written, and :func:`features.labels.write_labels`
is the only writer: on any error the store is left exactly as it was. The whole run holds
the store's writer lock (``features/lock.py``), and the labels are replaced at once
(``features/labels.py``): an interrupted run leaves the old labels or the new ones.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import UserError
from ..labels import write_labels
from ..lock import store_lock
from ..safe_write import atomic_write, storage_error
from ..schema import utc_now
from ..schema import NORMAL_CLASS, SPLITS
from ..store import open_store
from . import csv_manifest, reference_bundle, shanghaitech, ucf_crime, xd_violence
from .base import Annotations, first_names, video_key
from .validation import carve_validation, check_fraction

log = logging.getLogger("pipeline")

READERS = {ucf_crime.NAME: ucf_crime.read, xd_violence.NAME: xd_violence.read,
           shanghaitech.NAME: shanghaitech.read, csv_manifest.NAME: csv_manifest.read}
DATASETS = tuple(READERS) + (reference_bundle.NAME,)


def read_annotations(dataset: str, annotations: str | Path,
                     labels: str | Path | None = None) -> Annotations:
    """Parse ``annotations`` (file or folder) with the adapter of ``dataset``; a folder in
    the reference's bundle layout is read as such (:mod:`.reference_bundle`), its label ids
    named by ``labels`` (an id,name CSV) or the dataset's built-in table."""
    if dataset not in DATASETS:
        raise UserError(f"--dataset {dataset}: unknown dataset; use one of {', '.join(DATASETS)}")
    path = Path(annotations).expanduser()
    if not path.exists():
        raise UserError(f"{path}: no such annotations file or folder; pass --annotations with "
                        "the dataset's official files (see docs/datasets.md)")
    if dataset == reference_bundle.NAME or (dataset in reference_bundle.LABEL_TABLES
                                            and reference_bundle.detect(path)):
        return reference_bundle.read(path, dataset, labels)
    if labels is not None:
        raise UserError(f"--labels {labels}: label ids are read only from the reference bundle "
                        f"layout (Annotations/Anomaly_Train_Abnormal.txt ...), not found under "
                        f"{path}; drop --labels")
    return READERS[dataset](path)


def missing_list_path(store_path: Path) -> Path:
    """Where the full list of listed-but-absent videos goes (next to the store)."""
    return store_path.with_name(store_path.stem + ".missing.txt")


@dataclass
class LabelPlan:
    labels: pd.DataFrame            # video_id (of the store), split, class_name, class_names_all, intervals
    class_names: list[str]
    missing: list[str] = field(default_factory=list)      # listed, no features
    unlabelled: list[str] = field(default_factory=list)   # features, not listed
    carved: bool = False                                  # val split drawn here


def _match(ann: Annotations, store_ids: list[str]) -> dict[str, str]:
    """{annotation video_id: store video_id}; store ids are file stems, normalised alike."""
    by_key: dict[str, str] = {}
    for vid in store_ids:
        key = video_key(vid)
        if key in by_key:
            raise UserError(f"videos {by_key[key]} and {vid} of the store both stand for {key}; "
                            "rename one of the feature files")
        by_key[key] = vid
    return {vid: by_key[vid] for vid in ann.entries if vid in by_key}


def plan_labels(ann: Annotations, videos: pd.DataFrame, store_path: Path, val_fraction: float = 0.2,
                val_seed: int = 0, allow_missing: bool = False) -> LabelPlan:
    """Check ``ann`` against the store's ``videos`` (columns video_id, n_frames) and return
    the rows to write. Raises UserError, naming file and line, on the first problem."""
    check_fraction(val_fraction)
    matched = _match(ann, list(videos["video_id"]))
    missing = [vid for vid in ann.entries if vid not in matched]
    missing_file = missing_list_path(store_path)
    try:
        missing_file.unlink(missing_ok=True)              # from an earlier run
        if missing:
            atomic_write(missing_file, lambda tmp: tmp.write_text("\n".join(missing) + "\n"))
    except OSError as err:
        raise storage_error(err, missing_file, "write the list of missing videos",
                            "label a copy of the feature file on a writable disk") from None
    if missing:
        if not allow_missing:
            hint = ""
            if not matched and len(videos):
                hint = (f" (no listed name matches any video_id: the store has e.g. "
                        f"{videos['video_id'].iloc[0]!r}, the lists e.g. {missing[0]!r})")
            raise UserError(f"{len(missing)} of {len(ann.entries)} videos listed in {ann.source} "
                            f"have no features in {store_path}{hint}: {first_names(missing)}; full "
                            f"list in {missing_file}; extract or import them, or pass "
                            "--allow-missing to label the others")
    n_frames = dict(zip(videos["video_id"], videos["n_frames"]))
    bad = []
    for vid, store_id in matched.items():
        entry = ann.entries[vid]
        if entry.intervals and max(e for _, e in entry.intervals) >= n_frames[store_id]:
            bad.append((entry, store_id))
    if bad:
        entry, store_id = bad[0]
        n = int(n_frames[store_id])
        end = max(e for _, e in entry.intervals)
        more = f" ({len(bad) - 1} more videos alike)" if len(bad) > 1 else ""
        raise UserError(f"{entry.intervals_where}: interval end {end} of {entry.video_id} is beyond "
                        f"its {n} frames (last frame {n - 1}) in {store_path}{more}; the annotation "
                        "belongs to another copy of the video, or the features were made at "
                        "another frame rate")

    table = ann.table()
    table = table[table["video_id"].isin(matched)].copy()
    carved = val_fraction > 0 and not (table["split"] == "val").any()
    if carved:
        table = carve_validation(table, val_fraction, val_seed)
    table["video_id"] = table["video_id"].map(matched)
    labelled = set(table["video_id"])
    unlabelled = [vid for vid in videos["video_id"] if vid not in labelled]
    train = table[table["split"] == "train"]
    if len(train) and (train["class_name"] == NORMAL_CLASS).all():
        log.warning("warning: no abnormal training video; stage two needs both kinds")
    elif len(train) and not (train["class_name"] == NORMAL_CLASS).any():
        log.warning("warning: no normal training video; stage two needs both kinds")
    cols = ["video_id", "split", "class_name", "class_names_all", "intervals"]
    return LabelPlan(table[cols].reset_index(drop=True), list(ann.class_names), missing,
                     unlabelled, carved)


@dataclass
class LabelSummary:
    store: Path
    dataset: str
    annotations: Path
    labels: pd.DataFrame
    class_names: list[str]
    missing: list[str]
    unlabelled: list[str]
    val_fraction: float
    val_seed: int
    carved: bool

    def counts(self) -> pd.DataFrame:
        """Videos per split (rows) and class (columns)."""
        return pd.crosstab(self.labels["split"], self.labels["class_name"]).reindex(
            [s for s in SPLITS if s in set(self.labels["split"])])

    def __str__(self) -> str:
        lines = [f"labelled {len(self.labels)} videos of {self.store} as {self.dataset} "
                 f"(annotations {self.annotations})"]
        for split, row in self.counts().iterrows():
            classes = ", ".join(f"{c} {n}" for c, n in row.items() if n)
            lines.append(f"  {split:<5} {int(row.sum()):>6}  ({classes})")
        if self.carved:
            lines.append(f"  val: {self.val_fraction:g} of each training class, val seed "
                         f"{self.val_seed}")
        elif (self.labels["split"] == "val").any():
            lines.append("  val: as given in the annotations")
        lines.append(f"  {len(self.class_names)} classes: {', '.join(self.class_names)}")
        if self.missing:
            lines.append(f"  skipped {len(self.missing)} listed videos with no features "
                         f"(--allow-missing): {first_names(self.missing)}; full list in "
                         f"{missing_list_path(self.store)}")
        if self.unlabelled:
            lines.append(f"  {len(self.unlabelled)} videos of the store are in no list and stay "
                         f"unlabelled: {first_names(self.unlabelled)}")
        return "\n".join(lines)


def _videos_of(store_path: Path) -> pd.DataFrame:
    """video_id and native frame count of every complete video of the store."""
    with open_store(store_path, old_labels="ignore") as store:    # labels are replaced
        meta = store.metadata()
    n = meta["n_frames"].astype("float64")
    fallback = meta["n_rows"].astype("float64") * meta["stride"].fillna(1).astype("float64")
    return pd.DataFrame({"video_id": meta["video_id"],
                         "n_frames": n.fillna(fallback).astype("int64")})


def apply_plan(store_path: Path, ann: Annotations, plan: LabelPlan, val_fraction: float,
               val_seed: int) -> None:
    """Write ``plan`` into the store (the only write); videos not in the plan end up
    unlabelled."""
    write_labels(store_path, plan.labels, plan.class_names, ann.dataset,
                 attrs={"labels_source": str(ann.source), "val_fraction": float(val_fraction),
                        "val_seed": int(val_seed), "val_carved": bool(plan.carved),
                        "labelled_utc": utc_now()})


def label_store(store_path: str | Path, dataset: str, annotations: str | Path,
                val_fraction: float = 0.2, val_seed: int = 0, allow_missing: bool = False,
                wait: bool = False, labels: str | Path | None = None) -> LabelSummary:
    """Attach ``dataset`` labels read from ``annotations`` to the store at ``store_path``:
    split (train/val/test), class_name, label, intervals. Returns a printable summary.
    ``labels``: id,name CSV of a reference bundle's label ids (:func:`read_annotations`).

    Another process writing the store is an error naming it, or with ``wait`` awaited."""
    store_path = Path(store_path)
    check_fraction(val_fraction)
    open_store(store_path, old_labels="ignore").close()   # a clear error before the lock
    ann = read_annotations(dataset, annotations, labels)
    with store_lock(store_path, "label", wait=wait):
        return label_locked(store_path, ann, val_fraction, val_seed, allow_missing)


def label_locked(store_path: Path, ann: Annotations, val_fraction: float, val_seed: int,
                 allow_missing: bool) -> LabelSummary:
    """:func:`label_store` with the annotations already read, by a caller that holds the
    store's writer lock (``extract --dataset`` labels under the extraction's lock)."""
    videos = _videos_of(store_path)
    plan = plan_labels(ann, videos, store_path, val_fraction, val_seed, allow_missing)
    if plan.missing:
        log.warning("warning: %d listed videos have no features in %s and are skipped: %s",
                    len(plan.missing), store_path, first_names(plan.missing))
    if plan.unlabelled:
        log.warning("warning: %d videos of %s are in no list and stay unlabelled: %s",
                    len(plan.unlabelled), store_path, first_names(plan.unlabelled))
    apply_plan(store_path, ann, plan, val_fraction, val_seed)
    return LabelSummary(store_path, ann.dataset, ann.source, plan.labels, plan.class_names,
                        plan.missing, plan.unlabelled, val_fraction, val_seed, plan.carved)
