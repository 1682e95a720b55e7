"""The HDF5 feature store: schema, writers and the reader every later stage uses.

Layout (``h5ls -r features.h5`` shows it)::

    /                          file attrs: format, format_version, model_id, model_sha256,
                               model_revision, embed_dim, dtype, stride, preprocessing,
                               decoder, source (extracted|imported), package_version,
                               created_utc, [dataset, class_names, normal_class],
                               [n_crops: embeddings are (T, n_crops, D), import --crop all]
    /videos/<video_id>/        group attrs: source_path, source_size, source_mtime_ns, fps,
                               n_frames (native), duration_s, width, height, rotation,
                               stride, n_rows, complete, [decoder (cpu|nvdec),
                               decoder_fallback, color_matrix, color_range: extracted
                               since the yuv444p path], [split, class_name, label,
                               class_names_all (JSON, multi-label videos, training class first)]
        embeddings   (T, D)    float16, chunked (64, D): CLIP image embeddings, not normalised
        frame_index  (T,)      int64: native frame number of each row (0-based)
        timestamps_ms (T,)     float64: presentation time of each row
        [intervals   (K, 2)]   int64: anomalous native-frame intervals, inclusive

A video group is only ever visible in the final file once complete: extraction writes
each video to its own shard file and merges shards into a new file that atomically
replaces the old one (see ``extract/commit.py``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np
import pandas as pd

from .errors import UserError

FORMAT = "anomalyclip-features"
FORMAT_VERSION = 1
EMBED_DTYPE = np.float16
CHUNK_ROWS = 64
NORMAL_CLASS = "Normal"
SPLITS = ("train", "val", "test")

_VIDEO_COLUMNS = ["video_id", "n_rows", "n_frames", "fps", "duration_s", "stride", "width",
                  "height", "source_path", "split", "class_name", "label", "intervals",
                  "class_names_all"]
_LABEL_ATTRS = ("split", "class_name", "label", "class_names_all")


def _attr(value):
    """Convert numpy scalars / bytes from h5py attrs to plain Python values."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_attrs(obj: h5py.HLObject) -> dict:
    return {k: _attr(v) for k, v in obj.attrs.items()}


class VideoWriter:
    """Appends one video's rows to ``/videos/<video_id>`` of an open h5py file.

    Rows arrive in order (streaming, so a long video is never held in memory);
    :meth:`finish` writes the metadata attrs and marks the group complete.
    """

    def __init__(self, h5: h5py.File, video_id: str, embed_dim: int, n_crops: int | None = None):
        # rows are (D,) or, for imported ten-crop features kept whole, (n_crops, D)
        row = (embed_dim,) if n_crops is None else (n_crops, embed_dim)
        self.group = h5.require_group("videos").create_group(video_id)
        self.n = 0
        self.emb = self.group.create_dataset(
            "embeddings", shape=(0, *row), maxshape=(None, *row), dtype=EMBED_DTYPE,
            chunks=(max(1, CHUNK_ROWS // (n_crops or 1)), *row))  # same bytes per chunk
        self.index = self.group.create_dataset(
            "frame_index", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
        self.times = self.group.create_dataset(
            "timestamps_ms", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(4096,))

    def append(self, embeddings: np.ndarray, frame_index: np.ndarray,
               timestamps_ms: np.ndarray | None = None):
        """Append k rows; timestamps may instead be given all at once to :meth:`finish`."""
        k = len(embeddings)
        if timestamps_ms is None:
            timestamps_ms = np.full(k, np.nan)
        if not (k == len(frame_index) == len(timestamps_ms)):
            raise ValueError("embeddings, frame_index and timestamps_ms differ in length")
        for ds, rows in ((self.emb, embeddings), (self.index, frame_index),
                         (self.times, timestamps_ms)):
            ds.resize(self.n + k, axis=0)
            ds[self.n:self.n + k] = rows
        self.n += k

    def finish(self, attrs: dict, timestamps_ms: np.ndarray | None = None):
        """Write metadata (and, when given, all timestamps at once) and mark complete."""
        if timestamps_ms is not None:
            if len(timestamps_ms) != self.n:
                raise ValueError(f"{len(timestamps_ms)} timestamps for {self.n} rows")
            self.times[:] = timestamps_ms
        for key, value in attrs.items():
            self.group.attrs[key] = value
        self.group.attrs["n_rows"] = self.n
        self.group.attrs["complete"] = True


def write_video(h5: h5py.File, video_id: str, embeddings: np.ndarray, frame_index: np.ndarray,
                timestamps_ms: np.ndarray, attrs: dict) -> None:
    """Write a whole video at once (import, tests). ``embeddings`` is (T, D) or, for
    imported crops kept as an axis, (T, n_crops, D)."""
    n_crops = embeddings.shape[1] if embeddings.ndim == 3 else None
    writer = VideoWriter(h5, video_id, embeddings.shape[-1], n_crops=n_crops)
    writer.append(embeddings, frame_index, timestamps_ms)
    writer.finish(attrs)


def write_file_attrs(h5: h5py.File, attrs: dict) -> None:
    h5.attrs["format"] = FORMAT
    h5.attrs["format_version"] = FORMAT_VERSION
    h5.attrs["dtype"] = np.dtype(EMBED_DTYPE).name
    for key, value in attrs.items():
        h5.attrs[key] = value


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_mode() -> int:
    """The permissions a new file gets here: 0666 less the umask (some writers, such as
    safetensors, create 0600 files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)          # no /proc: read the mask by setting it, then restore it
    os.umask(mask)
    return 0o666 & ~mask


def atomic_replace(tmp: Path, final: Path) -> None:
    """Make ``tmp`` durable with normal permissions, then rename it over ``final`` (atomic on
    one filesystem) and make the rename durable."""
    os.chmod(tmp, file_mode())
    fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(final.parent)


def atomic_write(final: str | Path, write) -> Path:
    """``write(tmp)`` next to ``final``, then :func:`atomic_replace`: readers see the old file
    or the complete new one, never part of it. The temporary file goes on failure."""
    final = Path(final)
    tmp = final.with_name(final.name + ".tmp")
    try:
        write(tmp)
        atomic_replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


class FeatureStore:
    """Read access to a feature file; arrays are read lazily, one video at a time."""

    def __init__(self, path: str | Path, mode: str = "r"):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"{self.path}: no such feature file; run `pipeline extract --videos DIR` "
                            "(or `pipeline import`) first, or pass the right path")
        try:
            self.h5 = h5py.File(self.path, mode)
        except OSError as err:
            raise UserError(f"{self.path}: not a readable HDF5 file ({err}); re-run "
                            "`pipeline extract` to rebuild it") from None
        if _attr(self.h5.attrs.get("format")) != FORMAT:
            self.h5.close()
            raise UserError(f"{self.path}: HDF5 file is not a feature store of this tool (no "
                            f"'format={FORMAT}' attribute); create one with `pipeline extract`")
        self.attrs = read_attrs(self.h5)
        self._videos = self.h5.get("videos")

    # -- file level ---------------------------------------------------------------
    @property
    def video_ids(self) -> list[str]:
        if self._videos is None:
            return []
        return sorted(k for k, g in self._videos.items() if g.attrs.get("complete", False))

    @property
    def embed_dim(self) -> int:
        return int(self.attrs["embed_dim"])

    @property
    def n_crops(self) -> int | None:
        """Crops per row when embeddings are (T, n_crops, D) (``pipeline import --crop all``),
        else None (the usual (T, D))."""
        n = self.attrs.get("n_crops")
        return int(n) if n is not None else None

    @property
    def class_names(self) -> list[str]:
        """All classes incl. the normal one, as stored by labelling (empty when unlabelled)."""
        return json.loads(self.attrs.get("class_names", "[]"))

    # -- one video ----------------------------------------------------------------
    def _group(self, video_id: str) -> h5py.Group:
        if self._videos is None or video_id not in self._videos:
            raise KeyError(f"{video_id!r} is not in {self.path}")
        return self._videos[video_id]

    def embeddings(self, video_id: str) -> h5py.Dataset:
        """The (T, D) float16 dataset, not read yet: slice it to read rows."""
        return self._group(video_id)["embeddings"]

    def load(self, video_id: str, dtype=np.float32) -> np.ndarray:
        return self._group(video_id)["embeddings"][()].astype(dtype, copy=False)

    def frame_index(self, video_id: str) -> np.ndarray:
        return self._group(video_id)["frame_index"][()]

    def timestamps_ms(self, video_id: str) -> np.ndarray:
        return self._group(video_id)["timestamps_ms"][()]

    def intervals(self, video_id: str) -> np.ndarray:
        g = self._group(video_id)
        return g["intervals"][()] if "intervals" in g else np.zeros((0, 2), np.int64)

    def video_attrs(self, video_id: str) -> dict:
        return read_attrs(self._group(video_id))

    def metadata(self) -> pd.DataFrame:
        """One row per complete video: ids, sizes, timing, source and labels (when set)."""
        rows = []
        for vid in self.video_ids:
            a = self.video_attrs(vid)
            row = {c: a.get(c) for c in _VIDEO_COLUMNS}
            row["video_id"] = vid
            row["intervals"] = [tuple(map(int, r)) for r in self.intervals(vid)]
            row["class_names_all"] = json.loads(a.get("class_names_all") or "[]") or (
                [row["class_name"]] if row["class_name"] is not None else [])
            rows.append(row)
        return pd.DataFrame(rows, columns=_VIDEO_COLUMNS)

    def close(self):
        self.h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_store(path: str | Path, mode: str = "r") -> FeatureStore:
    return FeatureStore(path, mode)


def write_labels(path: str | Path, labels: pd.DataFrame, class_names: Iterable[str],
                 dataset: str, unlabelled: Iterable[str] = (), attrs: dict | None = None) -> None:
    """Attach labels to videos already in the store at ``path``.

    ``labels`` has columns video_id, split, class_name and optionally intervals (a list of
    inclusive (start, end) native-frame pairs) and class_names_all (every class of a
    multi-label video, the training class ``class_name`` first; stored as a JSON attr).
    ``class_names`` lists every class including ``Normal``. Videos in ``unlabelled`` lose
    any labels an earlier run gave them; ``attrs`` are extra file attrs (where the labels
    came from). Callers validate first; this only writes.
    """
    with h5py.File(path, "r+") as h5:
        videos = h5["videos"]
        for vid in unlabelled:
            g = videos[vid]
            for key in _LABEL_ATTRS:
                if key in g.attrs:
                    del g.attrs[key]
            if "intervals" in g:
                del g["intervals"]
        for row in labels.itertuples(index=False):
            g = videos[row.video_id]
            g.attrs["split"] = row.split
            g.attrs["class_name"] = row.class_name
            g.attrs["label"] = int(row.class_name != NORMAL_CLASS)
            all_names = getattr(row, "class_names_all", None)
            if all_names is not None and len(all_names) > 1:
                g.attrs["class_names_all"] = json.dumps(list(all_names))
            elif "class_names_all" in g.attrs:
                del g.attrs["class_names_all"]
            if "intervals" in g:
                del g["intervals"]
            ivs = getattr(row, "intervals", None)
            if ivs is not None and len(ivs):
                g.create_dataset("intervals", data=np.asarray(ivs, dtype=np.int64).reshape(-1, 2))
        h5.attrs["class_names"] = json.dumps(sorted(set(class_names)))
        h5.attrs["normal_class"] = NORMAL_CLASS
        h5.attrs["dataset"] = dataset
        for key, value in (attrs or {}).items():
            h5.attrs[key] = value


def frame_labels(n_frames: int, intervals) -> np.ndarray:
    """Per-native-frame 0/1 labels: 1 inside any inclusive [start, end] interval."""
    y = np.zeros(int(n_frames), dtype=np.int8)
    for start, end in np.asarray(intervals, dtype=np.int64).reshape(-1, 2):
        y[max(int(start), 0):min(int(end), n_frames - 1) + 1] = 1
    return y
