"""The HDF5 feature store: the writers and the reader every later stage uses.

Layout (``h5ls -r features.h5`` shows it; every name is declared, with one line on what it
means, in ``features/schema.py``, and ``pipeline info --schema`` prints them all)::

    /                          file attrs: format, format_version (2), dtype, source
                               (extracted | imported | synthetic), model_id, model_sha256,
                               model_revision, embed_dim, stride, preprocessing, decoder,
                               encoder_dtype, batch_size, device, package_version,
                               created_utc, updated_utc; imported files also fps,
                               fps_assumed, imported_from, crop, source_crops, [n_crops:
                               embeddings are (T, n_crops, D), import --crop all];
                               synthetic stores: synthetic
    /videos/<video_id>/        group attrs: video_id, source_path, source_root, source_size,
                               source_mtime_ns, fps, [fps_assumed], n_frames (native),
                               n_rows, duration_s, width, height, display_width,
                               display_height, sar, rotation, codec, has_audio, stride,
                               decoder (cpu | nvdec), decoder_fallback, color_matrix,
                               color_range, [source_crops], rows_crc32, complete
        embeddings   (T, D)    float16, chunked (64, D): CLIP image embeddings, not normalised
                               (every dataset: fletcher32 per chunk, crc32 in rows_crc32)
        frame_index  (T,)      int64: native frame number of each row (0-based)
        timestamps_ms (T,)     float64: presentation time of each row
    /labels/slot0, slot1       the labels, JSON in two checksummed slots (features/labels.py):
                               file level dataset, class_names, normal_class, labels_source,
                               val_fraction, val_seed, val_carved, labelled_utc; per video
                               split, class_name, [class_names_all], intervals (inclusive
                               native frames), and the n_frames, source_path, source_root
                               it was labelled against

Readers see the labels exactly as format 1 stored them (file attrs ``dataset``,
``class_names``, ...; video attrs ``split``, ``class_name``, ``label`` (derived);
``intervals``). A video group is only ever visible in the final file once complete:
extraction writes each video to its own shard file and merges shards into a new file that
atomically replaces the old one (see ``extract/commit.py``).
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .errors import UserError, one_line
from .integrity import CHECKSUM, DIGEST_ATTR, Digest, check_digest, reading
from .labels import read_labels
# re-exported for evaluate/stage.py, train/run.py and samples/hard.py until they import
# these from their owners (features.schema, features.safe_write); nothing else may
from .safe_write import atomic_replace, atomic_write  # noqa: F401
from .schema import NORMAL_CLASS, SPLITS  # noqa: F401
from .schema import (EMBED_DTYPE, FILE_LABEL_FIELDS, FORMAT, FORMAT_VERSION,
                     VIDEO_LABEL_ATTRS, attr_value, read_attrs)

CHUNK_ROWS = 64

_VIDEO_COLUMNS = ["video_id", "n_rows", "n_frames", "fps", "duration_s", "stride", "width",
                  "height", "source_path", "split", "class_name", "label", "intervals",
                  "class_names_all"]


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
        self.digest = Digest()
        self.emb = self.group.create_dataset(
            "embeddings", shape=(0, *row), maxshape=(None, *row), dtype=EMBED_DTYPE,
            chunks=(max(1, CHUNK_ROWS // (n_crops or 1)), *row), **CHECKSUM)  # same bytes/chunk
        self.index = self.group.create_dataset(
            "frame_index", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,),
            **CHECKSUM)
        self.times = self.group.create_dataset(
            "timestamps_ms", shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(4096,),
            **CHECKSUM)

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
            rows = np.asarray(rows, dtype=ds.dtype)
            ds.resize(self.n + k, axis=0)
            ds[self.n:self.n + k] = rows
            self.digest.add(ds.name.rsplit("/", 1)[-1], rows)
        self.n += k

    def finish(self, attrs: dict, timestamps_ms: np.ndarray | None = None):
        """Write metadata (and, when given, all timestamps at once) and mark complete."""
        if timestamps_ms is not None:
            if len(timestamps_ms) != self.n:
                raise ValueError(f"{len(timestamps_ms)} timestamps for {self.n} rows")
            rows = np.asarray(timestamps_ms, dtype=self.times.dtype)
            self.times[:] = rows
            self.digest.add("timestamps_ms", rows, restart=True)
        for key, value in attrs.items():
            self.group.attrs[key] = value
        self.group.attrs["n_rows"] = self.n
        self.group.attrs[DIGEST_ATTR] = self.digest.attr()
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
    h5.attrs["dtype"] = EMBED_DTYPE
    for key, value in attrs.items():
        h5.attrs[key] = value


class FeatureStore:
    """Read access to a feature file; arrays are read lazily, one video at a time.
    ``old_labels``: what labels of format 1 (v0.1) do (:func:`features.labels.read_labels`):
    raise a one-line error naming `pipeline label`, or ``"ignore"`` (labelling itself)."""

    def __init__(self, path: str | Path, old_labels: str = "raise"):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"{self.path}: no such feature file; run `pipeline extract --videos DIR` "
                            "(or `pipeline import`) first, or pass the right path")
        try:
            self.h5 = h5py.File(self.path, "r")
        except OSError as err:
            raise UserError(f"{self.path}: not a readable HDF5 file ({one_line(err)}); re-run "
                            "`pipeline extract` to rebuild it") from None
        if attr_value(self.h5.attrs.get("format")) != FORMAT:
            self.h5.close()
            raise UserError(f"{self.path}: HDF5 file is not a feature store of this tool (no "
                            f"'format={FORMAT}' attribute); create one with `pipeline extract`")
        try:
            self.labels = read_labels(self.h5, old_labels)
        except UserError:
            self.h5.close()
            raise
        self.attrs = {**{k: v for k, v in read_attrs(self.h5).items()
                         if k not in FILE_LABEL_FIELDS}, **self.labels.store_attrs()}
        self._videos = self.h5.get("videos")
        self._stale: dict[str, str] | None = None
        self._raw: dict[str, dict] = {}     # video attrs as stored (read once: h5py is slow)

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
        """The (T, D) float16 dataset, not read yet: its shape; read rows with :meth:`rows`,
        :meth:`load` or :meth:`read_into` (or inside ``integrity.reading``), which name a
        damaged video instead of raising HDF5's error."""
        return self._group(video_id)["embeddings"]

    def rows(self, video_id: str) -> np.ndarray:
        """Every stored row of the video, as stored ((T, D) float16), checksums checked."""
        return self._checked(video_id, "embeddings")

    def load(self, video_id: str, dtype=np.float32) -> np.ndarray:
        return self.rows(video_id).astype(dtype, copy=False)

    def read_into(self, video_id: str, out: np.ndarray, start: int) -> None:
        """Read the video's rows into ``out[start:start + T]`` (no extra copy)."""
        group = self._group(video_id)
        ds = group["embeddings"]
        with reading(self.path, video_id):
            ds.read_direct(out, dest_sel=np.s_[start:start + ds.shape[0]])
        check_digest(self.path, video_id, group, "embeddings", out[start:start + ds.shape[0]])

    def frame_index(self, video_id: str) -> np.ndarray:
        return self._checked(video_id, "frame_index")

    def timestamps_ms(self, video_id: str) -> np.ndarray:
        return self._checked(video_id, "timestamps_ms")

    def _checked(self, video_id: str, name: str) -> np.ndarray:
        """A whole dataset of the video, its fletcher32 and crc32 checked."""
        group = self._group(video_id)
        with reading(self.path, video_id):
            rows = group[name][()]
        check_digest(self.path, video_id, group, name, rows)
        return rows

    def _stored_attrs(self, video_id: str) -> dict:
        """The video group's attrs without labels (format 1 kept labels there too: a file
        being labelled again may still have them)."""
        if video_id not in self._raw:
            self._raw[video_id] = {k: v for k, v in read_attrs(self._group(video_id)).items()
                                   if k not in VIDEO_LABEL_ATTRS}
        return self._raw[video_id]

    def _label(self, video_id: str):
        entry = self.labels.videos.get(video_id)
        if entry is None or entry.stale_reason(self._stored_attrs(video_id)) is not None:
            return None
        return entry

    def intervals(self, video_id: str) -> np.ndarray:
        entry = self._label(video_id)
        if entry is None or not entry.intervals:
            return np.zeros((0, 2), np.int64)
        return np.asarray(entry.intervals, np.int64).reshape(-1, 2)

    def video_attrs(self, video_id: str) -> dict:
        """The video's attrs, with its labels when it has (valid) ones."""
        entry = self._label(video_id)
        attrs = dict(self._stored_attrs(video_id))
        return {**attrs, **entry.attrs()} if entry is not None else attrs

    @property
    def stale_labels(self) -> dict[str, str]:
        """{video_id: why} for videos whose label entry no longer applies (re-extracted with
        another frame count, or from another source file): they read as unlabelled."""
        if self._stale is None:
            self._stale = {}
            stored = set(self.video_ids)
            for vid, entry in self.labels.videos.items():
                if vid in stored:
                    why = entry.stale_reason(self._stored_attrs(vid))
                    if why:
                        self._stale[vid] = why
        return self._stale

    def metadata(self) -> pd.DataFrame:
        """One row per complete video: ids, sizes, timing, source and labels (when set)."""
        columns = _VIDEO_COLUMNS + [k for k in VIDEO_LABEL_ATTRS if k not in _VIDEO_COLUMNS]
        rows = []
        for vid in self.video_ids:
            a = self.video_attrs(vid)
            row = {c: a.get(c) for c in columns}
            row["video_id"] = vid
            row["intervals"] = [tuple(map(int, r)) for r in self.intervals(vid)]
            row["class_names_all"] = json.loads(a.get("class_names_all") or "[]") or (
                [row["class_name"]] if row["class_name"] is not None else [])
            rows.append(row)
        return pd.DataFrame(rows, columns=columns)

    def close(self):
        self.h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_store(path: str | Path, old_labels: str = "raise") -> FeatureStore:
    return FeatureStore(path, old_labels)


def store_identity(path: str | Path) -> str:
    """Path, size and modification time of a feature file: a re-extracted file is another
    file (part of a training run's name and of its resume state)."""
    p = Path(path).resolve()
    st = p.stat()
    return f"{p}:{st.st_size}:{st.st_mtime_ns}"


def frame_labels(n_frames: int, intervals) -> np.ndarray:
    """Per-native-frame 0/1 labels: 1 inside any inclusive [start, end] interval."""
    y = np.zeros(int(n_frames), dtype=np.int8)
    for start, end in np.asarray(intervals, dtype=np.int64).reshape(-1, 2):
        y[max(int(start), 0):min(int(end), n_frames - 1) + 1] = 1
    return y
