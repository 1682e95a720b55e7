"""One video, start to finish: decode -> encode -> committed shard (or a failure reason).

The same function runs in the local thread pool and inside Dask workers. Decoding runs
ahead in a prefetch thread (ffmpeg is its own process), so while this video waits for the
shared encoder its next frames are already being decoded. A video the GPU decoder refuses
is decoded again on the CPU, and the file records which decoder made it.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from features import schema

from .commit import ShardWriter
from .decode import DecodeError, DecoderRefused, FrameStream
from .encode import FrameEncoder
from .ffmpeg_bin import ffmpeg_exe
from .probe import VideoInfo
from .scan import VideoSource

log = logging.getLogger("pipeline")

# chunks decoded ahead of the encoder; the stream's ring of buffers holds these, the one
# being encoded and the one being filled
PREFETCH_DEPTH = 2


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


def extracted_attrs(src: VideoSource, info: VideoInfo, stream: FrameStream, stride: int,
                fallback: str = "") -> dict:
    """Per-video attrs of the store (declared in features/schema.py)."""
    disp_w, disp_h = info.display_size
    return schema.video_attrs(
        video_id=src.video_id, source_path=src.relpath, source_size=src.size,
        source_mtime_ns=src.mtime_ns, fps=info.fps, n_frames=stream.n_frames,
        duration_s=info.duration_s, width=info.width, height=info.height,
        display_width=disp_w, display_height=disp_h, sar=info.sar, rotation=info.rotation,
        codec=info.codec, has_audio=info.has_audio, stride=stride, decoder=stream.decoder,
        decoder_fallback=fallback, color_matrix=stream.colour.matrix,
        color_range="full" if stream.colour.full_range else "limited")


def choose_decoder(decoder: str, encoder: FrameEncoder) -> str:
    """``auto``: NVDEC when the frames are encoded on a GPU, else the CPU decoder."""
    if decoder == "auto":
        return "nvdec" if encoder.device.type == "cuda" else "cpu"
    return decoder


# {ffmpeg binary: why it cannot use NVDEC on this machine}, learnt from its first refusal
_no_gpu_decoder: dict[str, str] = {}


def _nvdec_skipped(info: VideoInfo) -> str | None:
    """Why this video goes straight to the CPU decoder when NVDEC was asked for, or None."""
    if info.rotation:       # ffmpeg rotates on the CPU; not attempted on GPU frames
        return f"nvdec not used: display rotation {info.rotation}"
    return _no_gpu_decoder.get(ffmpeg_exe())


@dataclass(frozen=True)
class ShardSettings:
    """What every video of one extraction run shares (it travels to Dask workers too)."""
    folder: Path            # where shards go: <out>.parts
    file_attrs: dict        # the feature file's attrs (+ source_root), copied into each shard
    stride: int             # keep every stride-th native frame
    decoder: str = "cpu"    # cpu, nvdec or auto (:func:`choose_decoder`)


def extract_one_video(src: VideoSource, info: VideoInfo, encoder: FrameEncoder,
                      settings: ShardSettings, *,
                      on_rows: Callable[[int], None] = lambda n: None,
                      stop: threading.Event | None = None) -> str | None:
    """Write ``src`` to a committed shard in ``settings.folder``; return None, or why it
    failed.

    Frames are encoded in batches of ``encoder.batch_size`` consecutive frames of this
    video only, so the numbers do not depend on which other videos happen to be decoded at
    the same time. A video NVDEC refuses is decoded again on the CPU; its
    ``decoder_fallback`` attr says why. ``on_rows(n)`` is told of every n rows encoded
    (and of -n when a refused NVDEC decode is taken back); ``stop`` abandons the video.
    """
    fallback = ""
    if choose_decoder(settings.decoder, encoder) == "nvdec":
        fallback = _nvdec_skipped(info) or ""
        if not fallback:
            try:
                return _write_shard(src, info, encoder, settings, "nvdec", "", on_rows, stop)
            except DecoderRefused as err:
                fallback = str(err)
                if err.no_gpu and ffmpeg_exe() not in _no_gpu_decoder:
                    _no_gpu_decoder[ffmpeg_exe()] = f"no GPU decoder here ({err})"
                    log.warning("NVDEC cannot decode on this machine (%s); decoding on the CPU",
                                err)
                log.info("%s: %s; decoding on the CPU", src.relpath, err)
    return _write_shard(src, info, encoder, settings, "cpu", fallback, on_rows, stop)


def _write_shard(src: VideoSource, info: VideoInfo, encoder: FrameEncoder,
                 settings: ShardSettings, decoder: str, fallback: str,
                 on_rows: Callable[[int], None], stop: threading.Event | None) -> str | None:
    """One decode of ``src`` with ``decoder`` into a committed shard; None or why it failed.
    Raises :class:`DecoderRefused` (nothing kept, progress taken back) for NVDEC."""
    gpu = encoder.device.index if encoder.device.type == "cuda" else None
    stream = FrameStream(str(src.path), info, settings.stride, chunk=encoder.batch_size,
                         decoder=decoder, gpu=gpu, alloc=encoder.host_buffer,
                         ring=PREFETCH_DEPTH + 2)
    writer = ShardWriter(settings.folder, src.video_id, encoder.clip.embed_dim,
                         settings.file_attrs)
    rows = 0
    try:
        for chunk in prefetch(stream, PREFETCH_DEPTH):
            if stop is not None and stop.is_set():
                raise Cancelled()
            writer.append(encoder(chunk.frames, stream.colour), chunk.frame_index)
            rows += len(chunk.frames)
            on_rows(len(chunk.frames))
        writer.commit(extracted_attrs(src, info, stream, settings.stride, fallback),
                      stream.timestamps_ms)
        return None
    except DecoderRefused:
        writer.abort()
        on_rows(-rows)
        raise
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
