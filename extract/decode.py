"""Stream a video's frames out of ffmpeg, already resized and centre-cropped to 224x224.

One ffmpeg process per video, raw full-chroma YUV (``yuv444p``, planar: each frame is
already channels-first) on stdout, read in fixed-size chunks into a few reused buffers, so
a 2-hour video is never held in memory and nothing is allocated per chunk. The filter
graph does, in order: keep every Nth frame (``select``), resize so the shorter
*displayed* side is 224 (bicubic; pixel aspect and rotation applied by the size computed
in :func:`resize_size`; ffmpeg auto-rotates) straight into ``yuv444p`` in the matrix and
range the stream declares (the chroma is full resolution *before* the crop, so an odd
crop offset never shifts it), then the centre crop. The YUV -> RGB conversion is left to
torch on the encoder's device (``extract/colour.py``): swscale's own RGB output is the
slowest part of the old rgb24 path.

Two decoders make the same frames:

- ``cpu``: one single-threaded software decoder per video (many parallel decoders beat
  one multi-threaded one), resized by swscale;
- ``nvdec``: the GPU's video decoder (``-hwaccel cuda``) and ``scale_cuda``; only the
  224x224 result is copied back. A GPU refuses some codecs, profiles and sizes: the
  stream then raises :class:`DecoderRefused` and the caller decodes it on the CPU.

No per-frame log is read: the frames' presentation times come from the probe's packet
list (``VideoInfo.frame_times_ms``). For the rare stream whose packets carry no
timestamps (AVI with B-frames), ffmpeg writes the decoded frames' times to a file
(``-stats_mux_pre``), read once at the end. Frames pass through with their own
timestamps (``-fps_mode passthrough``): none is duplicated or dropped for variable frame
rate input.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator

import ffmpeg
import numpy as np
import torch

from features.clip_loader import IMAGE_SIZE

from .colour import Colour
from .ffmpeg_bin import ffmpeg_exe, ffmpeg_version, passthrough_option
from .probe import VideoInfo

DECODERS = ("cpu", "nvdec")
PREPROCESSING = ("ffmpeg: select every stride-th frame; scale shorter displayed side to 224 "
                 "(bicubic B=0 C=0.5; decoder cpu: swscale, nvdec: scale_cuda; sample aspect "
                 "and rotation applied) into yuv444p (full chroma) in the stream's declared "
                 "matrix and range; centre crop 224x224 (offset floored); "
                 "torch: YUV->RGB with that matrix and range (BT.601 limited when the stream "
                 "declares none), clip to 0..255, x/255, normalise with CLIP mean/std, "
                 "all one fused matrix + offset + clamp")
FRAME_SHAPE = (3, IMAGE_SIZE, IMAGE_SIZE)      # planar Y, U, V
# ffmpeg's words for a GPU that cannot decode this stream, or cannot decode at all
_REFUSED = ("Failed setup for format cuda", "Impossible to convert", "hwaccel",
            "Hardware device setup failed", "No device available", "cuda", "CUDA", "cuvid")
_NO_GPU = ("Cannot load libcuda", "Could not dynamically load CUDA", "Device creation failed",
           "No device available", "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device")


class DecodeError(Exception):
    """Decoding stopped early or failed; the message is the reason."""


class DecoderRefused(DecodeError):
    """The hardware decoder could not make this video; the CPU decoder can try.
    ``no_gpu``: it cannot decode anything on this machine (no driver, no device)."""

    def __init__(self, message: str, no_gpu: bool = False):
        super().__init__(message)
        self.no_gpu = no_gpu


def resize_size(info: VideoInfo, size: int = IMAGE_SIZE) -> tuple[int, int]:
    """(w, h) after scaling the shorter displayed side to ``size``, keeping display aspect.

    The size is given to ffmpeg's scale filter, which runs after auto-rotation, so it is in
    displayed orientation. Never below ``size`` on either side, so the crop always fits.
    """
    w, h = info.display_size
    if w <= h:
        return size, max(size, round(h * size / w))
    return max(size, round(w * size / h)), size


def ffmpeg_command(path: str, info: VideoInfo, stride: int = 1, decoder: str = "cpu",
                   gpu: int | None = None, times_file: str | None = None) -> list[str]:
    """The ffmpeg command line that writes the video's 224x224 yuv444p frames to stdout.
    ``gpu``: the CUDA device of ``nvdec``; ``times_file``: where ffmpeg writes each frame's
    presentation time (only needed when the packets carry none)."""
    w, h = resize_size(info)
    colour: Colour = info.colour
    hw = {}
    if decoder == "nvdec":
        hw = dict(hwaccel="cuda", hwaccel_output_format="cuda", extra_hw_frames=4)
        if gpu is not None:
            hw["hwaccel_device"] = str(gpu)
    stream = ffmpeg.input(str(path), threads=1, **hw)["v:0"]
    if stride > 1:
        stream = stream.filter("select", f"not(mod(n,{stride}))")
    # bicubic with Keys a=-0.5, as PIL (swscale: param0/1 = B, C; scale_cuda: param = -a);
    # crop offset floored, as PIL and Hugging Face's CLIP processor (ffmpeg's default crop
    # rounds half up: 1 px off)
    if decoder == "nvdec":
        stream = (stream.filter("scale_cuda", w, h, interp_algo="bicubic", param=0.5,
                                format="yuv444p")
                  .filter("hwdownload").filter("format", "yuv444p"))
    else:   # ask for the declared matrix and range: a no-op unless a frame says otherwise
        stream = (stream.filter("scale", w, h, flags="bicubic", param0=0, param1=0.5,
                                out_color_matrix=colour.matrix, out_range=colour.range_name)
                  .filter("format", "yuv444p"))
    off = f"floor((iw-{IMAGE_SIZE})/2)", f"floor((ih-{IMAGE_SIZE})/2)"
    stream = stream.filter("crop", IMAGE_SIZE, IMAGE_SIZE, *off).filter("setsar", 1)
    extra = {}
    if times_file:
        extra = dict(stats_mux_pre=times_file, stats_mux_pre_fmt="{pts} {tb}",
                     enc_time_base="demux")
    out = stream.output("pipe:", format="rawvideo", pix_fmt="yuv444p", **passthrough_option(),
                        **extra)
    # global options first: "level" prefixes each log line with its severity ([error], ...);
    # warnings are few (no per-frame line) and say why a GPU refused a stream
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats",
            "-loglevel", "level+warning"] + out.compile()[1:]


@dataclass
class Chunk:
    frames: torch.Tensor      # (k, 3, 224, 224) uint8, planar YUV in the stream's colour
    frame_index: np.ndarray   # (k,) int64, native frame numbers
    first_row: int            # row of frames[0] within the video


def host_buffer(shape: tuple[int, ...]) -> torch.Tensor:
    """Plain uint8 host memory (the encoder gives pinned memory when it feeds a GPU)."""
    return torch.empty(shape, dtype=torch.uint8)


class FrameStream:
    """Iterate a video as :class:`Chunk` s of ``chunk`` frames; then read ``timestamps_ms``.

    Chunks live in a ring of ``ring`` buffers from ``alloc``, reused in turn: a chunk's
    frames are overwritten ``ring`` chunks later, so a consumer must be done with a chunk
    before it is that far behind (the prefetch queue in video.py sizes the ring).

    Raises :class:`DecodeError` when ffmpeg fails, yields no frame, or stops before the
    number of frames the container holds (a partial video is never passed as complete);
    :class:`DecoderRefused` when ``decoder="nvdec"`` fails in any way.
    """

    def __init__(self, path: str, info: VideoInfo, stride: int = 1, chunk: int = 64,
                 decoder: str = "cpu", gpu: int | None = None,
                 alloc: Callable[[tuple[int, ...]], torch.Tensor] = host_buffer, ring: int = 4):
        if decoder not in DECODERS:
            raise ValueError(f"decoder {decoder!r}: one of {DECODERS}")
        self.path, self.info, self.stride, self.chunk = str(path), info, stride, chunk
        self.decoder, self.gpu, self.alloc, self.ring = decoder, gpu, alloc, ring
        self.colour: Colour = info.colour
        self.timestamps_ms: np.ndarray | None = None
        self.n_rows = 0
        self.n_frames = 0                 # native frames decoded (known at the end)
        self._log: list[str] = []         # first warnings and errors, as ffmpeg wrote them
        self._errors: list[str] = []      # first error lines
        self._proc: subprocess.Popen | None = None

    def _read_stderr(self, stream):
        for raw in stream:          # a few lines per video: nothing is logged per frame
            line = raw.decode("utf-8", "replace").strip()[-240:]
            if len(self._log) < 20:
                self._log.append(line)
            if ("[error]" in line or "[fatal]" in line) and len(self._errors) < 5:
                self._errors.append(line)

    def _first_error(self) -> str:
        return self._errors[0] if self._errors else ""

    def __iter__(self) -> Iterator[Chunk]:
        times_file = None
        if self.info.frame_times_ms is None:         # packets without pts: ask the decoder
            if ffmpeg_version() < (7, 0):
                raise DecodeError("the container gives no frame timestamps (AVI with "
                                  "B-frames?) and this ffmpeg is too old (< 7.0) to report "
                                  "them; use a newer ffmpeg (PIPELINE_FFMPEG) or remux")
            fd, times_file = tempfile.mkstemp(prefix="pipeline_times_", suffix=".txt")
            os.close(fd)
        try:
            yield from self._decode(times_file)
            self._finish(times_file)
        finally:
            if times_file:
                os.unlink(times_file)

    def _decode(self, times_file: str | None) -> Iterator[Chunk]:
        shape = (self.chunk, *FRAME_SHAPE)
        frame_bytes = int(np.prod(FRAME_SHAPE))
        buffers = [self.alloc(shape) for _ in range(self.ring)]
        views = [memoryview(b.numpy()).cast("B") for b in buffers]
        self._proc = proc = subprocess.Popen(
            ffmpeg_command(self.path, self.info, self.stride, self.decoder, self.gpu,
                           times_file),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        _widen_pipe(proc.stdout)
        reader = threading.Thread(target=self._read_stderr, args=(proc.stderr,), daemon=True)
        reader.start()
        try:
            row = 0
            while True:
                slot = (row // self.chunk) % self.ring
                got = _read_full(proc.stdout, views[slot])
                k = got // frame_bytes
                if k:
                    index = np.arange(row, row + k, dtype=np.int64) * self.stride
                    yield Chunk(buffers[slot][:k], index, row)
                    row += k
                if got < len(views[slot]):
                    if got % frame_bytes:
                        self._fail(f"ffmpeg output ended inside a frame after {row} rows")
                    break
            self._rc = proc.wait()
            reader.join()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.n_rows = row

    def _fail(self, message: str):
        if self.decoder == "nvdec":
            reason = next((ln for ln in self._log if any(m in ln for m in _REFUSED)), "")
            text = " ".join(self._log + self._errors)
            raise DecoderRefused(f"nvdec: {_tail(reason or self._first_error() or message)}",
                                 no_gpu=any(m in text for m in _NO_GPU))
        raise DecodeError(message)

    def _finish(self, times_file: str | None):
        expected_rows = self.info.rows(self.stride)
        why = _tail(self._first_error())
        if self._rc != 0:
            self._fail(f"ffmpeg exited with status {self._rc} after {self.n_rows} rows ({why})")
        if self.n_rows == 0:
            self._fail(f"no frame could be decoded ({why or 'empty video stream'})")
        if self.n_rows < expected_rows:
            self._fail(f"decoding stopped after {self.n_rows} of {expected_rows} rows "
                       f"(truncated or corrupt; {why or 'no ffmpeg error'})")
        if times_file:
            times = _read_times_ms(times_file)
        else:
            times = self.info.frame_times_ms[::self.stride]
        if len(times) != self.n_rows:
            raise DecodeError(f"decoded {self.n_rows} rows but the container lists "
                              f"{len(times)} frames at stride {self.stride}: the frame times "
                              "are unknown")
        self.timestamps_ms = np.asarray(times, dtype=np.float64)
        # native frames: all packets decoded; with stride, rows stand for stride frames each
        self.n_frames = max(self.info.n_packets, (self.n_rows - 1) * self.stride + 1)

    def close(self):
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


def _tail(line: str) -> str:
    """An ffmpeg log line without its "[component @ 0x...] [level]" prefixes."""
    return line.rsplit("] ", 1)[-1].strip()[-200:]


def _read_times_ms(path: str) -> np.ndarray:
    """The "{pts} {tb}" lines ffmpeg wrote with -stats_mux_pre, as milliseconds."""
    with open(path) as f:
        fields = f.read().split()
    if not fields:
        return np.zeros(0)
    tb = Fraction(fields[1])
    pts = np.array(fields[0::2], dtype=np.int64)
    return pts * (1000 * tb.numerator) / tb.denominator


def _widen_pipe(stream, size: int = 1 << 20) -> None:
    """Ask Linux for a 1 MiB pipe (default 64 KiB): a 224x224 frame (147 KiB) then crosses
    in one transfer instead of three. Where that is not allowed, keep the default."""
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
