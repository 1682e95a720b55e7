"""Which ffmpeg binary to run: the system one when present, else imageio-ffmpeg's."""
from __future__ import annotations

import functools
import os
import shutil

from features.errors import UserError


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """``$PIPELINE_FFMPEG``, else ``ffmpeg`` on PATH, else imageio-ffmpeg's binary."""
    exe = os.environ.get("PIPELINE_FFMPEG") or shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise UserError("no ffmpeg found: install ffmpeg (apt install ffmpeg) or "
                        "`pip install imageio-ffmpeg`, or set PIPELINE_FFMPEG") from None


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> tuple[int, int]:
    """(major, minor) of :func:`ffmpeg_exe`; git snapshots (no number) count as new."""
    import re
    import subprocess

    first = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True,
                           errors="replace").stdout.split("\n", 1)[0]
    m = re.search(r"version n?(\d+)\.(\d+)", first)
    return (int(m.group(1)), int(m.group(2))) if m else (99, 0)


def passthrough_option() -> dict:
    """Keep every frame with its own timestamp: ``-fps_mode`` since ffmpeg 5.1 (7 dropped
    the older ``-vsync``)."""
    return {"fps_mode": "passthrough"} if ffmpeg_version() >= (5, 1) else {"vsync": "passthrough"}
