"""The rgb24 decode path stage one used before the yuv444p one, kept as the baseline of
bench/decode.py: swscale converts to RGB, and a Python thread reads and regex-matches one
``showinfo`` log line per frame for its timestamp; a new array per chunk."""
from __future__ import annotations

import re
import subprocess
import threading
from typing import Iterator

import numpy as np

from extract.decode import _read_full, _widen_pipe, resize_size
from extract.ffmpeg_bin import ffmpeg_exe, passthrough_option
from extract.probe import VideoInfo

_SHOWINFO_RE = re.compile(r"Parsed_showinfo.*? n:\s*(\d+) pts:\s*(-?\d+) pts_time:(-?[\d.e+-]+)")


def rgb24_command(path: str, info: VideoInfo) -> list[str]:
    w, h = resize_size(info)
    graph = (f"scale={w}:{h}:flags=bicubic:param0=0:param1=0.5,"
             "crop=224:224:floor((iw-224)/2):floor((ih-224)/2),setsar=1,showinfo")
    (option, value), = passthrough_option().items()
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+info", "-threads",
            "1", "-i", str(path), "-map", "0:v:0", "-vf", graph, "-f", "rawvideo",
            f"-{option}", value, "-pix_fmt", "rgb24", "pipe:"]


def rgb24_frames(path: str, info: VideoInfo, chunk: int = 64) -> Iterator[np.ndarray]:
    """(k, 224, 224, 3) uint8 RGB chunks; the timestamps are parsed, then dropped."""
    pts: list[float] = []
    proc = subprocess.Popen(rgb24_command(path, info), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    _widen_pipe(proc.stdout)

    def read_stderr():
        for raw in proc.stderr:
            m = _SHOWINFO_RE.search(raw.decode("utf-8", "replace"))
            if m:
                pts.append(float(m.group(3)) * 1000.0)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    frame_bytes = 224 * 224 * 3
    while True:
        buf = np.empty((chunk, 224, 224, 3), np.uint8)
        got = _read_full(proc.stdout, memoryview(buf).cast("B"))
        if got // frame_bytes:
            yield buf[:got // frame_bytes]
        if got < buf.nbytes:
            break
    proc.wait()
    reader.join()
    assert len(pts) == info.rows(1), (len(pts), info.rows(1))
