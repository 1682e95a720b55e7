"""A video's frames for people to look at (``pipeline score --video --render``), not for CLIP:
RGB at a chosen height, the aspect kept, decoded by the same ffmpeg as stage one."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import numpy as np

from features.errors import UserError

from .ffmpeg_bin import ffmpeg_exe


def rgb_frames(video: str | Path, height: int) -> tuple[int, Iterator[np.ndarray]]:
    """(width, frames) of ``video`` scaled to ``height`` rows (width even, aspect kept):
    each frame (height, width, 3) uint8 RGB, decoded as the iterator is read. A video that
    does not decode is a one-line UserError naming it."""
    probe = subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(video),
                            "-frames:v", "1", "-vf", f"scale=-2:{height}", "-f", "rawvideo",
                            "-pix_fmt", "rgb24", "pipe:"], capture_output=True)
    if probe.returncode != 0 or not probe.stdout:
        raise UserError(f"{video}: cannot be decoded for --render "
                        f"({probe.stderr.decode(errors='replace').strip()[:200]})")
    width = len(probe.stdout) // (height * 3)
    return width, _frames(Path(video), width, height)


def _frames(video: Path, width: int, height: int) -> Iterator[np.ndarray]:
    size = width * height * 3
    decoder = subprocess.Popen([ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(video),
                                "-vf", f"scale={width}:{height}", "-f", "rawvideo",
                                "-pix_fmt", "rgb24", "pipe:"], stdout=subprocess.PIPE)
    try:
        while True:
            buf = decoder.stdout.read(size)
            if len(buf) < size:
                return
            yield np.frombuffer(buf, np.uint8).reshape(height, width, 3)
    finally:
        decoder.stdout.close()
        decoder.wait()
