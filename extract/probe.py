"""Probe a video: size, rotation, pixel aspect, colour, fps, duration, frame count and every
frame's presentation time.

The header facts come from the container through PyAV (the FFmpeg libraries, in process:
no banner text to parse). The frames come from the decoding ffmpeg itself: a stream copy
of the first video stream to the framecrc muxer lists its packets (= frames) without
decoding. The packets' presentation times, sorted, are the decoded frames' times: the same
ffmpeg shifts (container start time, edit lists) apply to a stream copy as to a decode, and
packets flagged discard (cut by an edit list) yield no frame. So decoding needs no
per-frame log to know when each frame is shown, and the frame count is the one of the
binary that decodes.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

import numpy as np

from .colour import Colour, stream_colour
from .ffmpeg_bin import ffmpeg_exe


class ProbeError(Exception):
    """The file cannot be used as a video; the message is the reason, for the failures table."""


@dataclass
class VideoInfo:
    width: int            # coded width (pixels)
    height: int
    sar: float            # sample (pixel) aspect ratio, 1.0 = square pixels
    rotation: int         # display rotation in degrees (0, 90, 180, 270), applied on decode
    fps: float            # average frame rate from the header (r_frame_rate fallback)
    duration_s: float     # container duration, 0.0 when unknown
    n_packets: int        # frames in the first video stream, counted by stream copy
    codec: str
    has_audio: bool
    pix_fmt: str = ""     # decoded pixel format (yuv420p, yuvj420p, yuv420p10le, ...)
    colour: Colour = Colour()   # YUV matrix and range the stream declares
    # presentation time (ms) of every frame, ascending; None when some packet carries no
    # timestamp (e.g. AVI with B-frames): the decoder then reports them (decode.py)
    frame_times_ms: np.ndarray | None = field(default=None, repr=False)

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown: pixel aspect applied, then rotation."""
        w, h = self.width * self.sar, float(self.height)
        if self.rotation % 180 == 90:
            w, h = h, w
        return max(1, round(w)), max(1, round(h))

    def rows(self, stride: int) -> int:
        """Rows a complete decode at ``stride`` yields: every stride-th of the frames."""
        return -(-self.n_packets // stride)


def read_header(path: str) -> dict:
    """The first video stream's facts from the container header (PyAV): codec, width,
    height, sar, fps, duration_s, rotation, has_audio, pix_fmt, colour."""
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise ProbeError(f"not a readable video ({_one_line(err)})") from None
    with container:
        if not container.streams.video:
            if container.streams.audio:
                raise ProbeError("no video stream (audio only)")
            raise ProbeError("not a readable video (the file holds no video stream)")
        stream = container.streams.video[0]
        cc = stream.codec_context
        if not cc.width or not cc.height:
            raise ProbeError("not a readable video (no picture size in its header)")
        sar = stream.sample_aspect_ratio or cc.sample_aspect_ratio
        rate = stream.average_rate or stream.base_rate
        pix_fmt = cc.format.name if cc.format is not None else ""
        return {"codec": cc.name, "width": cc.width, "height": cc.height,
                "sar": float(sar) if sar else 1.0, "fps": float(rate) if rate else 0.0,
                "duration_s": container.duration / av.time_base if container.duration else 0.0,
                "rotation": _rotation(container, stream),
                "has_audio": bool(container.streams.audio), "pix_fmt": pix_fmt,
                "colour": stream_colour(pix_fmt, cc.colorspace, cc.color_range)}


def _rotation(container, stream) -> int:
    """Clockwise degrees (0, 90, 180, 270) the picture is turned when shown. PyAV reads the
    display matrix from decoded frames only (its angle counter-clockwise): the first frame's.
    A stream whose first frame does not decode gets 0 here; its decode then fails with the
    reason."""
    import av

    stream.codec_context.thread_type = "NONE"          # one frame: no decoder threads
    try:
        for frame in container.decode(stream):
            return int(round(-frame.rotation)) % 360
    except (av.FFmpegError, ValueError):
        pass
    return 0


def probe(path: str, timeout: float = 120) -> VideoInfo:
    header = read_header(path)
    n_packets, frame_times_ms = list_packets(path, timeout)
    return VideoInfo(header["width"], header["height"], header["sar"], header["rotation"],
                     header["fps"], header["duration_s"], n_packets, header["codec"],
                     header["has_audio"], header["pix_fmt"], header["colour"],
                     frame_times_ms)


def list_packets(path: str, timeout: float = 120) -> tuple[int, np.ndarray | None]:
    """(frames, their presentation times in ms or None) of the first video stream, from a
    stream copy to ffmpeg's framecrc muxer: one line per packet, in every ffmpeg version
    (the -stats frame= field is missing for stream copies in some)."""
    try:
        count = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error",
                                "-i", str(path), "-map", "0:v:0", "-c", "copy",
                                "-f", "framecrc", "-"],
                               capture_output=True, text=True, errors="replace",
                               timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"ffmpeg took over {timeout:.0f}s to list the packets") from None
    n_packets, frame_times_ms = packet_times_ms(count.stdout)
    if count.returncode != 0 or not n_packets:
        raise ProbeError(f"cannot read the video stream ({_first_error(count.stderr)})")
    errors = _first_error(count.stderr, default="")
    if errors:
        raise ProbeError(f"corrupt or truncated container ({errors})")
    return n_packets, frame_times_ms


# "#tb 0: 1/12800", then per packet "0, dts, pts, duration, size, 0xcrc[, F=0xflags][, ...]"
# (flags are printed right after the crc whenever they are not just "key frame")
_TB_RE = re.compile(r"^#tb 0: (\d+)/(\d+)", re.M)
_PACKET_RE = re.compile(
    r"^0, *-?\d+, *(-?\d+), *-?\d+, *\d+, *0x[0-9a-fA-F]+(?:, F=0x([0-9a-fA-F]+))?", re.M)
_NO_PTS = str(np.iinfo(np.int64).min)       # AV_NOPTS_VALUE as framecrc prints it
_DISCARD = 0x4                               # AV_PKT_FLAG_DISCARD (e.g. cut by an edit list)


def packet_times_ms(framecrc: str) -> tuple[int, np.ndarray | None]:
    """(packets that yield a frame, their presentation times in ms, ascending) from the
    framecrc listing of a stream copy; times are None when a packet has no timestamp."""
    packets = [pts for pts, flags in _PACKET_RE.findall(framecrc)
               if not (flags and int(flags, 16) & _DISCARD)]
    tb = _TB_RE.search(framecrc)
    if not packets or tb is None or _NO_PTS in packets:
        return len(packets), None
    pts = np.sort(np.array(packets, dtype=np.int64))
    return len(packets), pts * (1000 * int(tb.group(1))) / int(tb.group(2))


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[-160:] or type(err).__name__


def _first_error(stderr: str, default: str = "unknown error") -> str:
    for ln in stderr.splitlines():
        ln = ln.strip().replace("\r", "")
        if ln and not ln.startswith("frame=") and "fps=" not in ln:
            return ln[-160:]
    return default
