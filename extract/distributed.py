"""Shard extraction over an existing Dask cluster (`pipeline extract --scheduler ADDRESS`).

One task per video. Each worker loads the model once (cached per worker process), decodes
and encodes the video itself, and writes that video's shard into the shared ``.parts``
folder; the client, which holds the feature file's writer lock for the whole run, merges
the shards as in a local run. A worker whose disk is full or read-only reports it, and the
client stops the run as a local run would. Only paths and small metadata
travel through the scheduler, never frames or arrays. Workers must see the videos and the
output folder at the same paths (a shared filesystem), and a task that loses its worker
is retried once.
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

from features.clip_loader import load_clip
from features.progress import Progress
from features.safe_write import error_errno

from .commit import StorageError
from .encode import FrameEncoder
from .probe import VideoInfo
from .result import Failure
from .scan import VideoSource
from .video import ShardSettings, extract_one_video

log = logging.getLogger("pipeline")

_ENCODERS: dict[tuple, FrameEncoder] = {}      # per worker process: loaded once


def _encoder(model: str, device: str, batch: int) -> FrameEncoder:
    key = (model, device, batch)
    if key not in _ENCODERS:
        _ENCODERS[key] = FrameEncoder(load_clip(model, device), batch)
    return _ENCODERS[key]


def extract_task(src: VideoSource, info: VideoInfo, device: str, batch: int,
                 settings: ShardSettings) -> tuple[str, str | None, tuple | None]:
    """Runs on a worker: one video -> one committed shard. Returns (video_id, failure or
    None, (path, errno) when the disk was full or read-only, else None)."""
    model_id, sha = settings.file_attrs["model_id"], settings.file_attrs["model_sha256"]
    encoder = _encoder(model_id, device, batch)
    if encoder.clip.fingerprint != sha:
        return src.video_id, (f"worker loaded different weights for {model_id} "
                              f"(sha256 {encoder.clip.fingerprint[:12]}...)"), None
    try:
        why = extract_one_video(src, info, encoder, settings)
    except StorageError as err:
        return src.video_id, str(err), (str(err.path), error_errno(err.err))
    return src.video_id, why, None


def extract_on_dask(probed: list[tuple[VideoSource, VideoInfo]], scheduler: str, device: str,
                    batch: int, settings: ShardSettings, show: bool | None):
    from dask.distributed import Client, as_completed

    settings = replace(settings, folder=settings.folder.resolve())
    done, failed = [], []
    by_key = {}
    with Client(scheduler) as client, Progress(len(probed), "videos", "video", show) as bar:
        log.info("Dask cluster %s: %d workers", scheduler, len(client.scheduler_info()["workers"]))
        futures = []
        for src, info in probed:
            key = f"extract-{src.video_id}-{src.size}-{src.mtime_ns}"
            by_key[key] = (src, info)
            futures.append(client.submit(extract_task, src, info, device, batch, settings,
                                         retries=1, pure=False, key=key))
        for future in as_completed(futures):
            src, info = by_key[future.key]
            try:
                _, why, storage = future.result()
            except Exception as err:               # the task itself crashed (twice)
                why, storage = f"worker error: {type(err).__name__}: {err}", None
            if storage is not None:                # every further video would fail alike
                client.cancel(futures)
                path, number = storage
                raise StorageError(Path(path), OSError(number, os.strerror(number or 0)))
            if why is None:
                done.append((src, info.rows(settings.stride)))
            else:
                failed.append(Failure(src.video_id, src.relpath, why))
            bar.update(1)
    return done, failed
