"""Which ffmpeg binary to run: the system one when present, else imageio-ffmpeg's."""
from __future__ import annotations

import functools
import os
import shutil

from features.errors import UserError


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """``$PIPELINE_FFMPEG``, else ``ffmpeg`` on PATH, else the binary in the imageio-ffmpeg wheel."""
    exe = os.environ.get("PIPELINE_FFMPEG") or shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise UserError("no ffmpeg found: install ffmpeg (apt install ffmpeg) or "
                        "`pip install imageio-ffmpeg`, or set PIPELINE_FFMPEG") from None
