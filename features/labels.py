"""Labels of a feature file (split, class, anomalous intervals per video), crash-safe.

Where they live: ``/labels/slot0`` and ``/labels/slot1`` of the feature file hold the
whole label table as JSON, the newest valid slot wins (``features/slots.py``). Writing
labels rewrites the older slot in place, a few hundred KiB, instead of the file:

- kill -9, Ctrl-C or a power loss at any moment leaves the old labels or the new ones,
  never a mix, and never touches the videos;
- a reader that has the file open (training with ``cache=hdf5``) is not disturbed and does
  not block the write;
- it costs milliseconds, where a crash-safe full copy of a UCF-Crime file (14 GB) costs
  the copy time and 14 GB of free disk every time (``bench/labels.py``; docs/robustness.md).

Whole-file rewrites (an extract merge, an import) carry the labels into the new file. Each
video's entry remembers the frame count and source file it was labelled against: when a
video is re-extracted with another frame count, its intervals no longer point at the same
frames, and when its source changed it is another video; such an entry is *stale*: readers
see the video unlabelled (``pipeline info`` lists it) until ``pipeline label`` runs again.
The entry itself is kept (nothing is deleted), so restoring the old video restores it.

Format-1 files (v0.1) kept labels as attrs of the video groups. They are no longer read:
opening one is a one-line error (:class:`OldLabels`) naming the command that upgrades it,
``pipeline label`` again, which rewrites the file once (a full copy) into format 2.
"""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np
import pandas as pd

from . import slots
from .errors import UserError
from .safe_write import H5Writer, atomic_write, storage_error, storage_errors, storage_problem
from .schema import (FILE_LABEL_FIELDS, FORMAT_VERSION, LABEL_ENTRY_FIELDS, NORMAL_CLASS,
                     VIDEO_ATTRS, VIDEO_LABEL_ATTRS, attr_value, label_attrs,
                     video_label_fields)

log = logging.getLogger("pipeline")

GROUP = "labels"
PAYLOAD_FORMAT = "anomalyclip-labels"
_ABOUT = ("labels (split, class_name, intervals per video) as JSON in slot0 / slot1: the slot "
          "with a valid checksum and the higher sequence number; `pipeline info` shows them")
_SLOT_MIN, _SLOT_PER_VIDEO = 64 * 1024, 1024


@dataclass
class VideoLabel:
    """One video's label entry (the fields of features/schema.py: ``VIDEO_LABEL_ATTRS``,
    ``LABEL_ENTRY_FIELDS``); fields beyond the ones named here live in ``more``."""
    split: str
    class_name: str
    class_names_all: list[str] = field(default_factory=list)    # multi-label; [] when one
    intervals: list[list[int]] = field(default_factory=list)   # inclusive native frames
    n_frames: int | None = None        # the frame count the intervals were checked against
    source_path: str | None = None     # the video's source file when labelled (relative)
    source_root: str | None = None     # ... and the folder it was relative to, when known
    more: dict = field(default_factory=dict)    # any other field, kept as stored

    def attrs(self) -> dict:
        """The per-video attrs readers see (as format 1 stored them)."""
        out = {"split": self.split, "class_name": self.class_name,
               "label": int(self.class_name != NORMAL_CLASS)}
        if len(self.class_names_all) > 1:
            out["class_names_all"] = json.dumps(self.class_names_all)
        out.update({k: v for k, v in self.more.items() if k in VIDEO_LABEL_ATTRS})
        return out

    def to_json(self) -> dict:
        body = {k: v for k, v in vars(self).items() if k != "more"}
        return {**self.more, **body}

    @classmethod
    def from_json(cls, body: dict) -> "VideoLabel":
        named = {f.name for f in fields(cls)} - {"more"}
        return cls(**{k: v for k, v in body.items() if k in named},
                   more={k: v for k, v in body.items() if k not in named})

    def stale_reason(self, video: dict) -> str | None:
        """Why this entry no longer applies to the stored video with attrs ``video``."""
        path, root = video.get("source_path"), video.get("source_root")
        if (self.source_path and path and self.source_path != path) or \
                (self.source_root and root and self.source_root != root):
            was = video_source({"source_path": self.source_path, "source_root": self.source_root})
            return f"its source is now {video_source(video)}, labelled as {was}"
        n = video.get("n_frames")
        if self.intervals and self.n_frames is not None and n is not None \
                and int(n) != self.n_frames:
            return (f"re-extracted with {int(n)} frames, labelled with {self.n_frames}: its "
                    "intervals no longer apply")
        return None


@dataclass
class LabelSet:
    file_attrs: dict = field(default_factory=dict)      # dataset, class_names (list), ...
    videos: dict[str, VideoLabel] = field(default_factory=dict)

    def store_attrs(self) -> dict:
        """File attrs as format 1 stored them (``class_names`` as a JSON string)."""
        out = dict(self.file_attrs)
        if "class_names" in out and not isinstance(out["class_names"], str):
            out["class_names"] = json.dumps(out["class_names"])
        return out

    def to_bytes(self) -> bytes:
        body = {"format": PAYLOAD_FORMAT, "attrs": self.file_attrs,
                "videos": {vid: v.to_json() for vid, v in sorted(self.videos.items())}}
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "LabelSet":
        body = json.loads(data)
        return cls(body.get("attrs", {}),
                   {vid: VideoLabel.from_json(v) for vid, v in body.get("videos", {}).items()})


def video_source(attrs: dict) -> str | None:
    """``root/relative path`` of a stored video's source file (relative path alone when the
    root is not recorded), or None."""
    rel = attrs.get("source_path")
    if rel is None:
        return None
    root = attrs.get("source_root")
    return f"{str(root).rstrip('/')}/{rel}" if root else str(rel)


# ---------------------------------------------------------------- reading
def has_slots(h5: h5py.File) -> bool:
    return slots.present(h5.get(GROUP))


class OldLabels(UserError):
    """A feature file whose labels are in format 1 (v0.1), which is no longer read."""


def read_labels(h5: h5py.File, old: str = "raise") -> LabelSet:
    """The labels of an open feature file (its slots; none when it has no labels). Labels
    of format 1 raise :class:`OldLabels`, or with ``old="ignore"`` read as none (labelling,
    which replaces them)."""
    if has_slots(h5):
        payload = slots.read(h5[GROUP])
        return LabelSet.from_bytes(payload) if payload else LabelSet()
    if old != "ignore" and has_format1_labels(h5):
        raise OldLabels(f"{h5.filename}: its labels are in the format of v0.1 (attrs of the "
                        "video groups), which this version no longer reads; run `pipeline "
                        "label` on it again (its --dataset and --annotations) to rewrite them")
    return LabelSet()


def has_format1_labels(h5: h5py.File) -> bool:
    """Whether the file keeps labels the way format 1 did (file or video group attrs)."""
    if any(k in h5.attrs for k in FILE_LABEL_FIELDS):
        return True
    return any("split" in g.attrs or "class_name" in g.attrs
               for g in h5.get("videos", {}).values())


# ---------------------------------------------------------------- files being written
def slot_capacity(n_videos: int, payload: int) -> int:
    size = max(_SLOT_MIN, _SLOT_PER_VIDEO * n_videos, 2 * payload)
    return -(-size // 4096) * 4096


def put_slots(h5: h5py.File, labels: LabelSet | None = None) -> None:
    """Give a file being written (new or a private copy) label slots sized for its videos,
    holding ``labels`` (default: the labels it has now); labels of format 1 are removed
    from the attrs."""
    if labels is None:
        labels = read_labels(h5)
    if not has_slots(h5):
        strip_format1_labels(h5)
    if GROUP in h5:
        del h5[GROUP]
    payload = labels.to_bytes()
    group = h5.create_group(GROUP)
    group.attrs["about"] = _ABOUT
    slots.create(group, slot_capacity(len(h5.get("videos", {})), len(payload)), payload)
    h5.attrs["format_version"] = FORMAT_VERSION


def strip_format1_labels(h5: h5py.File) -> None:
    for key in FILE_LABEL_FIELDS:
        if key in h5.attrs:
            del h5.attrs[key]
    for g in h5.get("videos", {}).values():
        for key in VIDEO_LABEL_ATTRS:
            if key in g.attrs:
                del g.attrs[key]
        if "intervals" in g:
            del g["intervals"]


# ---------------------------------------------------------------- the live file
def write_labels(path: str | Path, labels: pd.DataFrame, class_names: Iterable[str],
                 dataset: str, attrs: dict | None = None) -> None:
    """Replace the labels of the feature file at ``path`` (the caller holds its lock).

    ``labels`` has columns video_id, split, class_name and optionally intervals (inclusive
    (start, end) native-frame pairs) and class_names_all (every class of a multi-label
    video, the training class first). ``class_names`` lists every class including Normal;
    ``attrs`` are extra file attrs (where the labels came from). Videos not in ``labels``
    end up unlabelled. Callers validate first; this only writes.
    """
    path = Path(path)
    # what the entry remembers of the video itself (to tell when it no longer applies)
    remembered = [k for k in LABEL_ENTRY_FIELDS if k in VIDEO_ATTRS]
    given = [k for k in video_label_fields() if k in labels.columns]
    with h5py.File(path, "r") as h5:
        videos = h5["videos"]
        entries = {}
        for row in labels.to_dict("records"):
            g = videos[row["video_id"]]
            body = {k: _plain(row[k]) for k in given if not _missing(row[k])}
            body.update({k: attr_value(g.attrs[k]) for k in remembered if k in g.attrs})
            names = row.get("class_names_all")
            body["class_names_all"] = list(names) if names is not None and len(names) > 1 else []
            ivs = row.get("intervals")
            body["intervals"] = np.asarray(ivs if ivs is not None else [], np.int64
                                           ).reshape(-1, 2).tolist()
            if body.get("n_frames") is not None:
                body["n_frames"] = int(body["n_frames"])
            entries[row["video_id"]] = VideoLabel.from_json(body)
    file_attrs = label_attrs(class_names=sorted(set(class_names)), normal_class=NORMAL_CLASS,
                             dataset=dataset, **(attrs or {}))
    replace_labels(path, LabelSet(file_attrs, entries))


def _missing(value) -> bool:
    """An empty cell (None, NaN) of a label table: the field is not set for that video."""
    return value is None or (isinstance(value, float) and value != value)


def _plain(value):
    """A table cell as a JSON value (numpy scalars and arrays as Python ones)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return attr_value(value)


def replace_labels(path: Path, labels: LabelSet) -> None:
    """Write ``labels`` into the slots of ``path`` (the caller holds its lock); a file
    without slots (format 1) or whose slots are too small is rewritten once by a full copy."""
    payload = labels.to_bytes()
    with h5py.File(path, "r") as h5:
        in_place = has_slots(h5)
    if in_place:
        try:
            slots.write(path, GROUP, payload)
            return
        except slots.SlotFull:
            log.info("%s: the labels outgrew their slots; rewriting the file once", path)
        except OSError as err:
            if storage_problem(err):
                raise storage_error(err, path, "write its labels",
                                    "copy the file to a writable disk and label the copy"
                                    ) from None
            raise
    else:
        log.info("%s: has no label slots (written by an older version); rewriting it once "
                 "with them (a copy of %.1f GiB)", path, path.stat().st_size / 2**30)
    rewrite_with_labels(path, labels)


def rewrite_with_labels(path: Path, labels: LabelSet) -> None:
    """The full-copy way: a new file with ``labels`` in fresh slots, renamed over ``path``."""
    def write(tmp: Path) -> None:
        shutil.copyfile(path, tmp)
        with H5Writer(tmp, "r+") as h5:
            put_slots(h5, labels)

    with storage_errors(path, "rewrite it with its new labels",
                        "copy it to a writable disk with room for a second copy",
                        needed=lambda: path.stat().st_size):
        atomic_write(path, write)
