"""One video, start to finish: decode -> encode -> committed shard (or a failure reason).

The same function runs in the local thread pool and inside Dask workers. Decoding runs
ahead in a prefetch thread (ffmpeg is its own process), so while this video waits for the
shared encoder its next frames are already being decoded.
"""
from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .commit import ShardWriter
from .decode import DecodeError, FrameStream
from .probe import VideoInfo
from .scan import VideoSource

log = logging.getLogger("pipeline")



class Cancelled(Exception):
    """The run is stopping (Ctrl-C): abandon this video, keep nothing of it."""


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def fill():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        pass
                if stop.is_set():
                    return
            q.put(("done", None))
        except BaseException as err:          # re-raised in the consumer
            q.put(("error", err))

    thread = threading.Thread(target=fill, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=5)


def video_attrs(src: VideoSource, info: VideoInfo, stream: FrameStream, stride: int) -> dict:
    """Per-video attrs of the store (see features/store.py)."""
    disp_w, disp_h = info.display_size
    return {
        "video_id": src.video_id, "source_path": src.relpath, "source_size": src.size,
        "source_mtime_ns": src.mtime_ns, "fps": info.fps, "n_frames": stream.n_frames,
        "duration_s": info.duration_s, "width": info.width, "height": info.height,
        "display_width": disp_w, "display_height": disp_h, "sar": info.sar,
        "rotation": info.rotation, "codec": info.codec, "has_audio": info.has_audio,
        "stride": stride,
    }


def extract_one_video(src: VideoSource, info: VideoInfo, encode: Callable, embed_dim: int,
                      folder: Path, file_attrs: dict, stride: int, batch_size: int,
                      on_rows: Callable[[int], None] = lambda n: None,
                      stop: threading.Event | None = None) -> str | None:
    """Write ``src`` to a committed shard in ``folder``; return None, or why it failed.

    ``encode`` maps (B, 224, 224, 3) uint8 to (B, D) float32. Frames are encoded in
    batches of ``batch_size`` consecutive frames of this video only, so the numbers do
    not depend on which other videos happen to be decoded at the same time.
    """
    stream = FrameStream(str(src.path), info, stride, chunk=batch_size)
    writer = ShardWriter(folder, src.video_id, embed_dim, file_attrs)
    try:
        for chunk in prefetch(stream):
            if stop is not None and stop.is_set():
                raise Cancelled()
            writer.append(encode(chunk.frames), chunk.frame_index)
            on_rows(len(chunk.frames))
        writer.commit(video_attrs(src, info, stream, stride), stream.timestamps_ms)
        return None
    except DecodeError as err:
        writer.abort()
        return str(err)
    except Cancelled:
        writer.abort()
        return "cancelled (the run was interrupted)"
    except Exception as err:                   # keep the run going; the table says why
        writer.abort()
        log.debug("unexpected error on %s", src.path, exc_info=True)
        return f"{type(err).__name__}: {err}"
    finally:
        stream.close()
