"""Stream a video's frames out of ffmpeg, already resized and centre-cropped to 224x224.

One ffmpeg process per video (single-threaded decoder: many parallel decoders beat one
multi-threaded one), raw RGB24 on stdout, read in fixed-size chunks so a 2-hour video is
never held in memory. The filter graph does, in order: keep every Nth frame (``select``),
resize so the shorter *displayed* side is 224 (bicubic; pixel aspect and rotation already
applied by the size computed in :func:`resize_size`; ffmpeg auto-rotates), centre crop
224x224, and ``showinfo``, whose per-frame log lines give each kept frame's timestamp.
Frames pass through with their own timestamps (``-fps_mode passthrough``): no frame is
duplicated or dropped for variable frame rate input.
"""
from __future__ import annotations

import fcntl
import re
import subprocess
import threading
from dataclasses import dataclass
from typing import Iterator

import ffmpeg
import numpy as np

from features.clip_loader import IMAGE_SIZE

from .ffmpeg_bin import ffmpeg_exe, passthrough_option
from .probe import VideoInfo

PREPROCESSING = ("ffmpeg: select every stride-th frame; scale shorter displayed side to 224 "
                 "(bicubic B=0 C=0.5, sample aspect and rotation applied); centre crop 224x224 "
                 "(offset floored); rgb24; "
                 "torch: x/255, normalise with CLIP mean/std")
_SHOWINFO_RE = re.compile(r"Parsed_showinfo.*? n:\s*(\d+) pts:\s*(-?\d+) pts_time:(-?[\d.e+-]+)")


class DecodeError(Exception):
    """Decoding stopped early or failed; the message is the reason."""


def resize_size(info: VideoInfo, size: int = IMAGE_SIZE) -> tuple[int, int]:
    """(w, h) after scaling the shorter displayed side to ``size``, keeping display aspect.

    The size is given to ffmpeg's scale filter, which runs after auto-rotation, so it is in
    displayed orientation. Never below ``size`` on either side, so the crop always fits.
    """
    w, h = info.display_size
    if w <= h:
        return size, max(size, round(h * size / w))
    return max(size, round(w * size / h)), size


def ffmpeg_command(path: str, info: VideoInfo, stride: int = 1) -> list[str]:
    w, h = resize_size(info)
    stream = ffmpeg.input(str(path), threads=1)["v:0"]
    if stride > 1:
        stream = stream.filter("select", f"not(mod(n,{stride}))")
    # bicubic with Keys a=-0.5 (param0/1 = B, C), as PIL; crop offset floored, as PIL and
    # Hugging Face's CLIP processor (ffmpeg's default crop rounds half up: 1 px off)
    off = f"floor((iw-{IMAGE_SIZE})/2)", f"floor((ih-{IMAGE_SIZE})/2)"
    stream = (stream.filter("scale", w, h, flags="bicubic", param0=0, param1=0.5)
              .filter("crop", IMAGE_SIZE, IMAGE_SIZE, *off)
              .filter("setsar", 1)
              .filter("showinfo"))
    out = stream.output("pipe:", format="rawvideo", pix_fmt="rgb24", **passthrough_option())
    # global options first: "level" prefixes each log line with its severity ([error], ...)
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+info"] + out.compile()[1:]


@dataclass
class Chunk:
    frames: np.ndarray        # (k, 224, 224, 3) uint8
    frame_index: np.ndarray   # (k,) int64, native frame numbers
    first_row: int            # row of frames[0] within the video


class FrameStream:
    """Iterate a video as :class:`Chunk` s of ``chunk`` frames; then read ``timestamps_ms``.

    Raises :class:`DecodeError` when ffmpeg fails, yields no frame, or stops before the
    number of frames the container holds (a partial video is never passed as complete).
    """

    def __init__(self, path: str, info: VideoInfo, stride: int = 1, chunk: int = 64):
        self.path, self.info, self.stride, self.chunk = str(path), info, stride, chunk
        self.timestamps_ms: np.ndarray | None = None
        self.n_rows = 0
        self.n_frames = 0                 # native frames decoded (known at the end)
        self._pts: list[float] = []
        self._errors: list[str] = []
        self._proc: subprocess.Popen | None = None

    def _read_stderr(self, stream):
        for raw in stream:
            line = raw.decode("utf-8", "replace")
            m = _SHOWINFO_RE.search(line)
            if m:
                self._pts.append(float(m.group(3)) * 1000.0)
            elif "[error]" in line or "[fatal]" in line:
                if len(self._errors) < 5:
                    self._errors.append(line.strip()[-200:])

    def __iter__(self) -> Iterator[Chunk]:
        frame_bytes = IMAGE_SIZE * IMAGE_SIZE * 3
        self._proc = proc = subprocess.Popen(
            ffmpeg_command(self.path, self.info, self.stride), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        _widen_pipe(proc.stdout)
        reader = threading.Thread(target=self._read_stderr, args=(proc.stderr,), daemon=True)
        reader.start()
        try:
            row = 0
            while True:
                buf = np.empty((self.chunk, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
                got = _read_full(proc.stdout, memoryview(buf).cast("B"))
                k = got // frame_bytes
                if k:
                    index = np.arange(row, row + k, dtype=np.int64) * self.stride
                    yield Chunk(buf[:k], index, row)
                    row += k
                if got < buf.nbytes:
                    if got % frame_bytes:
                        raise DecodeError(f"ffmpeg output ended inside a frame after {row} rows")
                    break
            rc = proc.wait()
            reader.join()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.n_rows = row
        self._check(rc)

    def _check(self, rc: int):
        expected_rows = self.info.rows(self.stride)
        why = self._errors[0] if self._errors else ""
        if rc != 0:
            raise DecodeError(f"ffmpeg exited with status {rc} after {self.n_rows} rows ({why})")
        if self.n_rows == 0:
            raise DecodeError(f"no frame could be decoded ({why or 'empty video stream'})")
        if self.n_rows < expected_rows:
            raise DecodeError(f"decoding stopped after {self.n_rows} of {expected_rows} rows "
                              f"(truncated or corrupt; {why or 'no ffmpeg error'})")
        if len(self._pts) != self.n_rows:
            raise DecodeError(f"got {self.n_rows} frames but {len(self._pts)} timestamps")
        self.timestamps_ms = np.asarray(self._pts, dtype=np.float64)
        # native frames: all packets decoded; with stride, rows stand for stride frames each
        self.n_frames = max(self.info.n_packets, (self.n_rows - 1) * self.stride + 1)

    def close(self):
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


def _widen_pipe(stream, size: int = 1 << 20) -> None:
    """Ask Linux for a 1 MiB pipe (default 64 KiB): a 224x224 RGB frame (147 KiB) then
    crosses in one transfer instead of three. Where that is not allowed, keep the default."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is None:
        return
    try:
        fcntl.fcntl(stream.fileno(), setpipe, size)
    except OSError:
        pass


def _read_full(stream, view: memoryview) -> int:
    """Read until ``view`` is full or EOF; return the number of bytes read."""
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got
