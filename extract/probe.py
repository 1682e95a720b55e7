"""Probe a video with ffmpeg alone (no ffprobe): size, rotation, pixel aspect, fps, duration,
frame count.

Two cheap runs: ``ffmpeg -i FILE`` prints the stream header (parsed here), and a stream copy
of the first video stream to the framecrc muxer lists its packets (= frames) without
decoding.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction

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

    def as_attrs(self) -> dict:
        return asdict(self)


_VIDEO_RE = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})")
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

    # one framecrc line per packet of the copied stream ("0, dts, pts, duration, size, crc
    # [, F=flags]"):
    # a packet count that every ffmpeg version prints (the -stats frame= field is missing
    # for stream copies in some)
    count = subprocess.run([exe, "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
                            "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"],
                           capture_output=True, text=True, errors="replace", timeout=timeout)
    n_packets = sum(1 for line in count.stdout.splitlines()
                    if line.startswith("0,") and not _discarded(line))
    if count.returncode != 0 or not n_packets:
        raise ProbeError(f"cannot read the video stream ({_first_error(count.stderr)})")
    errors = _first_error(count.stderr, default="")
    if errors:
        raise ProbeError(f"corrupt or truncated container ({errors})")
    return VideoInfo(width, height, sar, rotation, fps, duration, n_packets, codec, has_audio)


def _discarded(framecrc_line: str) -> bool:
    """A packet flagged discard (F=0x4, e.g. cut by an mp4 edit list) yields no frame."""
    flags = framecrc_line.rsplit("F=0x", 1)
    return len(flags) == 2 and bool(int(flags[1].split(",")[0].strip(), 16) & 0x4)


def _first_error(stderr: str, default: str = "unknown error") -> str:
    for ln in stderr.splitlines():
        ln = ln.strip().replace("\r", "")
        if ln and not ln.startswith("frame=") and "fps=" not in ln:
            return ln[-160:]
    return default
