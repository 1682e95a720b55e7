"""Probe a video with ffmpeg alone (no ffprobe): size, rotation, pixel aspect, colour, fps,
duration, frame count and every frame's presentation time.

Two cheap runs: ``ffmpeg -i FILE`` prints the stream header (parsed here), and a stream copy
of the first video stream to the framecrc muxer lists its packets (= frames) without
decoding. The packets' presentation times, sorted, are the decoded frames' times: the same
ffmpeg shifts (container start time, edit lists) apply to a stream copy as to a decode, and
packets flagged discard (cut by an edit list) yield no frame. So decoding needs no
per-frame log to know when each frame is shown.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .colour import Colour, declared_colour
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


_VIDEO_RE = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})")
# "Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 1280x720"
_PIXFMT_RE = re.compile(r"Video: .+?, (\w+)(?:\((.*?)\))?, \d{2,5}x\d{2,5}")
_SAR_RE = re.compile(r"\[SAR (\d+):(\d+) DAR")
_FPS_RE = re.compile(r"([\d.]+k?) fps")
_TBR_RE = re.compile(r"([\d.]+k?) tbr")
_DUR_RE = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_ROT_RE = re.compile(r"rotation of (-?[\d.]+) degrees")


def _rate(text: str) -> float:
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


def probe(path: str, timeout: float = 120) -> VideoInfo:
    exe = ffmpeg_exe()
    try:
        header = subprocess.run([exe, "-hide_banner", "-nostdin", "-i", str(path)],
                                capture_output=True, text=True, errors="replace",
                                timeout=timeout).stderr
    except subprocess.TimeoutExpired:
        raise ProbeError(f"ffmpeg took over {timeout:.0f}s to read the header") from None
    lines = header.splitlines()
    video_line = next((ln for ln in lines if _VIDEO_RE.search(ln)), None)
    if video_line is None:
        last = next((ln.strip() for ln in reversed(lines) if ln.strip()
                     and "At least one output" not in ln), "")
        if any(": Audio:" in ln for ln in lines):
            raise ProbeError("no video stream (audio only)")
        raise ProbeError(f"not a readable video ({last[-160:] or 'ffmpeg printed nothing'})")
    m = _VIDEO_RE.search(video_line)
    codec, width, height = m.group(1), int(m.group(2)), int(m.group(3))
    sar_m = _SAR_RE.search(video_line)
    sar = float(Fraction(int(sar_m.group(1)), int(sar_m.group(2)))) \
        if sar_m and int(sar_m.group(1)) and int(sar_m.group(2)) else 1.0
    fps_m = _FPS_RE.search(video_line) or _TBR_RE.search(video_line)
    fps = _rate(fps_m.group(1)) if fps_m else 0.0
    dur_m = _DUR_RE.search(header)
    duration = (int(dur_m.group(1)) * 3600 + int(dur_m.group(2)) * 60 + float(dur_m.group(3))
                if dur_m else 0.0)
    # rotation side data is printed under the video stream it belongs to
    start = lines.index(video_line)
    rot_m = next((r for r in (_ROT_RE.search(ln) for ln in lines[start + 1:start + 12]) if r), None)
    rotation = int(round(-float(rot_m.group(1)))) % 360 if rot_m else 0
    has_audio = any(": Audio:" in ln for ln in lines)
    fmt_m = _PIXFMT_RE.search(video_line)
    pix_fmt, tags = (fmt_m.group(1), fmt_m.group(2) or "") if fmt_m else ("", "")

    # one framecrc line per packet of the copied stream, in every ffmpeg version (the -stats
    # frame= field is missing for stream copies in some)
    try:
        count = subprocess.run([exe, "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
                                "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"],
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
    return VideoInfo(width, height, sar, rotation, fps, duration, n_packets, codec, has_audio,
                     pix_fmt, declared_colour(pix_fmt, tags), frame_times_ms)


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


def _first_error(stderr: str, default: str = "unknown error") -> str:
    for ln in stderr.splitlines():
        ln = ln.strip().replace("\r", "")
        if ln and not ln.startswith("frame=") and "fps=" not in ln:
            return ln[-160:]
    return default
