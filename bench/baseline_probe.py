"""The header reading stage one used before PyAV, kept as the baseline of bench/probe.py:
``ffmpeg -i FILE`` in a subprocess, its human-readable banner parsed with regexes for size,
pixel aspect, rotation, frame rate, duration, codec, audio and colour tags."""
from __future__ import annotations

import re
import subprocess
from fractions import Fraction

from extract.colour import Colour
from extract.ffmpeg_bin import ffmpeg_exe
from extract.probe import ProbeError

_VIDEO_RE = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})")
# "Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 1280x720"
_PIXFMT_RE = re.compile(r"Video: .+?, (\w+)(?:\((.*?)\))?, \d{2,5}x\d{2,5}")
_SAR_RE = re.compile(r"\[SAR (\d+):(\d+) DAR")
_FPS_RE = re.compile(r"([\d.]+k?) fps")
_TBR_RE = re.compile(r"([\d.]+k?) tbr")
_DUR_RE = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_ROT_RE = re.compile(r"rotation of (-?[\d.]+) degrees")
_SPACES = {"bt709": "bt709", "fcc": "fcc", "bt470bg": "bt601", "smpte170m": "bt601",
           "smpte240m": "smpte240m", "bt2020nc": "bt2020", "bt2020c": "bt2020"}


def _rate(text: str) -> float:
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


def _colour(pix_fmt: str, tags: str) -> Colour:
    """``yuv420p`` with tags ``"tv, bt709/bt709/bt709, progressive"``."""
    matrix, full = "bt601", pix_fmt.startswith("yuvj")
    for token in (t.strip() for t in tags.split(",")):
        if token in ("pc", "tv"):
            full = full or token == "pc"
        elif token.split("/")[0] in _SPACES:
            matrix = _SPACES[token.split("/")[0]]
    return Colour(matrix, full)


def banner_header(path: str, timeout: float = 120) -> dict:
    """The header facts ``extract.probe.read_header`` now reads with PyAV, from the banner."""
    header = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                            capture_output=True, text=True, errors="replace",
                            timeout=timeout).stderr
    lines = header.splitlines()
    video_line = next((ln for ln in lines if _VIDEO_RE.search(ln)), None)
    if video_line is None:
        if any(": Audio:" in ln for ln in lines):
            raise ProbeError("no video stream (audio only)")
        raise ProbeError("not a readable video")
    m = _VIDEO_RE.search(video_line)
    sar_m = _SAR_RE.search(video_line)
    sar = float(Fraction(int(sar_m.group(1)), int(sar_m.group(2)))) \
        if sar_m and int(sar_m.group(1)) and int(sar_m.group(2)) else 1.0
    fps_m = _FPS_RE.search(video_line) or _TBR_RE.search(video_line)
    dur_m = _DUR_RE.search(header)
    start = lines.index(video_line)
    rot_m = next((r for r in (_ROT_RE.search(ln) for ln in lines[start + 1:start + 12]) if r),
                 None)
    fmt_m = _PIXFMT_RE.search(video_line)
    pix_fmt, tags = (fmt_m.group(1), fmt_m.group(2) or "") if fmt_m else ("", "")
    return {"codec": m.group(1), "width": int(m.group(2)), "height": int(m.group(3)),
            "sar": sar, "fps": _rate(fps_m.group(1)) if fps_m else 0.0,
            "duration_s": (int(dur_m.group(1)) * 3600 + int(dur_m.group(2)) * 60
                           + float(dur_m.group(3))) if dur_m else 0.0,
            "rotation": int(round(-float(rot_m.group(1)))) % 360 if rot_m else 0,
            "has_audio": any(": Audio:" in ln for ln in lines), "pix_fmt": pix_fmt,
            "colour": _colour(pix_fmt, tags)}
