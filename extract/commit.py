"""Crash-safe writing: one shard file per video, merged into the store by atomic replace.

Why this design: a plain HDF5 file that is being written when the process dies can be left
unreadable, losing every video in it. So the feature file is never written in place:

1. Each video is streamed into ``<out>.parts/<video_id>.h5.tmp``. Only when every frame is
   encoded and ffmpeg exited cleanly is the shard closed, fsynced and renamed to
   ``<video_id>.h5`` (a rename is atomic): a shard that exists is complete, a ``.tmp`` is
   garbage from an interrupted run and is deleted on the next start.
2. Merging writes a new ``<out>.tmp`` holding the old file's videos plus the shards,
   fsyncs it and renames it over ``<out>``; only then are the merged shards deleted.

A kill at any moment leaves ``<out>`` either the old or the new complete file, and every
finished video either in it or in a committed shard. The next run merges what is there and
extracts only what is missing, ending with the same content as an uninterrupted run.
There is only ever one writer per file (each shard has its own), so Dask workers can write
shards in parallel into a shared folder.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from features.store import (VideoWriter, atomic_replace, read_attrs, write_file_attrs)

log = logging.getLogger("pipeline")

# label attrs that survive when a changed video is re-extracted
_LABEL_ATTRS = ("split", "class_name", "label", "class_names_all")
# file attrs of an existing store that a merge keeps (labels were attached to it)
_KEPT_FILE_ATTRS = ("created_utc", "dataset", "class_names", "normal_class", "labels_source",
                    "val_fraction", "val_seed", "val_carved", "labelled_utc")


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


class ShardWriter:
    """Streams one video into its own shard; :meth:`commit` makes it visible atomically."""

    def __init__(self, folder: Path, video_id: str, embed_dim: int, file_attrs: dict):
        folder.mkdir(parents=True, exist_ok=True)
        self.final = folder / f"{video_id}.h5"
        self.tmp = folder / f"{video_id}.h5.tmp"
        self.h5 = h5py.File(self.tmp, "w")
        write_file_attrs(self.h5, file_attrs)
        self.video = VideoWriter(self.h5, video_id, embed_dim)

    def append(self, embeddings: np.ndarray, frame_index: np.ndarray):
        self.video.append(embeddings, frame_index)

    def commit(self, attrs: dict, timestamps_ms: np.ndarray):
        self.video.finish(attrs, timestamps_ms)
        self.h5.close()
        atomic_replace(self.tmp, self.final)

    def abort(self):
        if self.h5.id.valid:
            self.h5.close()
        self.tmp.unlink(missing_ok=True)


def committed_shards(folder: Path) -> dict[str, tuple[Path, dict]]:
    """{video_id: (shard path, video attrs)} of complete shards; deletes leftover ``.tmp``."""
    found: dict[str, tuple[Path, dict]] = {}
    if not folder.exists():
        return found
    for tmp in folder.glob("*.h5.tmp"):
        tmp.unlink(missing_ok=True)
    for shard in sorted(folder.glob("*.h5")):
        try:
            with h5py.File(shard, "r") as h5:
                for vid, group in h5["videos"].items():
                    if group.attrs.get("complete", False):
                        found[vid] = (shard, read_attrs(group))
        except (OSError, KeyError):
            log.warning("removing unreadable shard %s", shard)
            shard.unlink(missing_ok=True)
    return found


def merge_shards(out: Path, shards: dict[str, Path], file_attrs: dict) -> int:
    """Write ``out`` anew = old videos not in ``shards`` + the shards; atomically; then
    delete the shards. Returns the number of videos in the new file."""
    tmp = out.with_name(out.name + ".tmp")
    attrs = dict(file_attrs)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    attrs.setdefault("created_utc", now)
    attrs["updated_utc"] = now
    with h5py.File(tmp, "w") as dst:
        videos = dst.create_group("videos")
        old_labels: dict[str, tuple[dict, np.ndarray | None]] = {}
        if out.exists():
            with h5py.File(out, "r") as src:
                for key in _KEPT_FILE_ATTRS:
                    if key in src.attrs and key != "created_utc":
                        attrs[key] = src.attrs[key]
                if "created_utc" in src.attrs:
                    attrs["created_utc"] = src.attrs["created_utc"]
                for vid, group in src.get("videos", {}).items():
                    if not group.attrs.get("complete", False):
                        continue
                    if vid in shards:
                        labels = {k: group.attrs[k] for k in _LABEL_ATTRS if k in group.attrs}
                        ivs = group["intervals"][()] if "intervals" in group else None
                        old_labels[vid] = (labels, ivs)
                    else:
                        src.copy(group, videos, name=vid)
        for vid, shard in sorted(shards.items()):
            with h5py.File(shard, "r") as src:
                src.copy(src["videos"][vid], videos, name=vid)
            if vid in old_labels:
                labels, ivs = old_labels[vid]
                for key, value in labels.items():
                    videos[vid].attrs[key] = value
                if ivs is not None:
                    videos[vid].create_dataset("intervals", data=ivs)
        write_file_attrs(dst, attrs)
        n = len(videos)
    atomic_replace(tmp, out)
    for shard in shards.values():
        shard.unlink(missing_ok=True)
    return n
