"""Crash-safe writing: one shard file per video, merged into the store by atomic replace.

Why this design: a plain HDF5 file that is being written when the process dies can be left
unreadable, losing every video in it. So the feature file is never written in place:

1. Each video is streamed into ``<out>.parts/<name>.<writer>.h5.tmp`` (``<name>`` a hash
   of the video_id, so any id makes a valid file name, also on case-insensitive disks;
   ``<writer>`` unique per writer, so two writers never share a temporary file). Only when
   every frame is encoded and ffmpeg exited cleanly is the shard closed, fsynced and renamed
   to ``<name>.h5`` (a rename is atomic): a shard that exists is complete, a ``.tmp`` is
   garbage from an interrupted run and is deleted on the next start, by the run that holds
   the file's writer lock (``features/lock.py``), never by another.
2. Merging writes a new ``<out>.tmp`` holding the old file's videos and labels plus the
   shards, fsyncs it and renames it over ``<out>``; only then are the merged shards deleted.

A kill at any moment leaves ``<out>`` either the old or the new complete file, and every
finished video either in it or in a committed shard. The next run merges what is there and
extracts only what is missing, ending with the same content as an uninterrupted run. Each
shard has one writer, so Dask workers can write shards in parallel into a shared folder
while the client holds the lock.

A disk that is full or read-only stops the run (:class:`StorageError`): temporary files
are removed, committed shards and the old file are kept.
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

import h5py
import numpy as np

from features.labels import LabelSet, put_slots, read_labels
from features.safe_write import (H5Writer, atomic_replace, atomic_write, remove_quietly,
                                 storage_errors, storage_problem)
from features.schema import FILE_LABEL_FIELDS, read_attrs, utc_now
from features.store import VideoWriter, write_file_attrs

log = logging.getLogger("pipeline")

# a run attr that goes onto each video of the run, not onto the file
SOURCE_ROOT = "source_root"


class StorageError(BaseException):
    """A write failed because the disk is full or read-only: the run must stop, as every
    further video would fail the same way. A BaseException, like KeyboardInterrupt, so that
    the per-video error handling, which keeps a run going past one bad video, lets it by."""

    def __init__(self, path: Path, err: BaseException):
        super().__init__(f"{path}: {storage_problem(err)}")
        self.path, self.err = Path(path), err


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def shard_name(video_id: str) -> str:
    return hashlib.sha1(video_id.encode("utf-8")).hexdigest()[:24] + ".h5"


class ShardWriter:
    """Streams one video into its own shard; :meth:`commit` makes it visible atomically."""

    def __init__(self, folder: Path, video_id: str, embed_dim: int, file_attrs: dict):
        file_attrs = dict(file_attrs)
        self.source_root = file_attrs.pop(SOURCE_ROOT, None)
        self.final = folder / shard_name(video_id)
        self.tmp = folder / f"{self.final.stem}.{os.getpid()}-{secrets.token_hex(4)}.h5.tmp"
        self.file: H5Writer | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.file = H5Writer(self.tmp)
            write_file_attrs(self.file.h5, file_attrs)
            self.video = VideoWriter(self.file.h5, video_id, embed_dim)
        except (OSError, RuntimeError) as err:
            self._failed(err)

    def append(self, embeddings: np.ndarray, frame_index: np.ndarray):
        try:
            self.video.append(embeddings, frame_index)
            if self.file.failed:                    # stop now, not at the end of the video
                raise self.file.failed
        except (OSError, RuntimeError) as err:
            self._failed(err)

    def commit(self, attrs: dict, timestamps_ms: np.ndarray):
        if self.source_root is not None:
            attrs = {**attrs, SOURCE_ROOT: self.source_root}
        try:
            self.video.finish(attrs, timestamps_ms)
            self.file.close()
            atomic_replace(self.tmp, self.final)
        except (OSError, RuntimeError) as err:
            self._failed(err)

    def _failed(self, err: BaseException):
        """Disk full or read-only: clean up and stop the run; anything else: re-raise (the
        caller records the video as failed and aborts the shard)."""
        if storage_problem(err):
            self.abort()
            raise StorageError(self.tmp, err) from None
        raise err

    def abort(self):
        """Close (ignoring the disk error a close reports) and delete the shard."""
        if self.file is not None:
            try:
                self.file.close()
            except (OSError, RuntimeError):
                pass
        remove_quietly(self.tmp)


def committed_shards(folder: Path) -> dict[str, tuple[Path, dict]]:
    """{video_id: (shard path, video attrs)} of complete shards; deletes leftover ``.tmp``.
    Call it only while holding the store's writer lock."""
    found: dict[str, tuple[Path, dict]] = {}
    if not folder.exists():
        return found
    for tmp in folder.glob("*.h5.tmp"):
        remove_quietly(tmp)
    for shard in sorted(folder.glob("*.h5")):
        try:
            with h5py.File(shard, "r") as h5:
                for vid, group in h5["videos"].items():
                    if group.attrs.get("complete", False):
                        found[vid] = (shard, read_attrs(group))
        except (OSError, KeyError):
            log.warning("removing unreadable shard %s", shard)
            remove_quietly(shard)
    return found


def merge_shards(out: Path, shards: dict[str, Path], file_attrs: dict) -> int:
    """Write ``out`` anew = old videos not in ``shards`` + the shards + the old labels;
    atomically; then delete the shards. Returns the number of videos in the new file."""
    attrs = {k: v for k, v in file_attrs.items()
             if k not in FILE_LABEL_FIELDS and k != SOURCE_ROOT}
    now = utc_now()
    attrs.setdefault("created_utc", now)
    attrs["updated_utc"] = now
    stale: list[str] = []
    merged: list[int] = []

    def write(tmp: Path) -> None:
        with H5Writer(tmp) as dst:
            videos = dst.create_group("videos")
            labels = LabelSet()
            if out.exists():
                with h5py.File(out, "r") as src:
                    if "created_utc" in src.attrs:
                        attrs["created_utc"] = src.attrs["created_utc"]
                    labels = read_labels(src)
                    for vid, group in src.get("videos", {}).items():
                        if group.attrs.get("complete", False) and vid not in shards:
                            src.copy(group, videos, name=vid)
            for vid, shard in sorted(shards.items()):
                with h5py.File(shard, "r") as src:
                    src.copy(src["videos"][vid], videos, name=vid)
                entry = labels.videos.get(vid)
                why = entry.stale_reason(read_attrs(videos[vid])) if entry else None
                if why:
                    stale.append(f"{vid} ({why})")
            write_file_attrs(dst, attrs)
            put_slots(dst, labels)
            merged.append(len(videos))

    def needed() -> int:
        return sum(p.stat().st_size for p in shards.values() if p.exists()) + (
            out.stat().st_size if out.exists() else 0)

    with storage_errors(out, "write the merged feature file",
                        f"choose another --out; then run the same command again: the "
                        f"{len(shards)} finished videos wait in {parts_dir(out)}", needed):
        atomic_write(out, write)
    for item in stale:
        log.warning("warning: labels of %s are set aside: run `pipeline label` again", item)
    for shard in shards.values():
        remove_quietly(shard)
    return merged[0]
