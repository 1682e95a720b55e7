"""``--render``: an mp4 of the video next to its score curve with a moving cursor (ffmpeg).

The curve panel is drawn once with matplotlib; per frame only a cursor column is painted
into a copy of it, so rendering costs about one decode plus one encode of the video. Frames
are decoded at a height of 240 pixels, panel and frame are put side by side and piped into
ffmpeg (libx264 when the binary has it, else mpeg4).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from extract import ffmpeg_exe, rgb_frames
from features.errors import UserError
from features.metrics import THRESHOLD
from features.safe_write import atomic_write
from features.schema import DEFAULT_FPS

from . import plots

HEIGHT = 240
PANEL_WIDTH = 480


def curve_panel(p_anomaly: np.ndarray, fps: float, threshold: float):
    """(panel (HEIGHT, PANEL_WIDTH, 3) uint8, x pixel of each frame (F,), (top, bottom) rows
    of the plot area) of the static score curve."""
    import matplotlib.pyplot as plt

    dpi = 100
    fig, ax = plt.subplots(figsize=(PANEL_WIDTH / dpi, HEIGHT / dpi), dpi=dpi)
    plots.draw_score_curve(ax, p_anomaly, fps, threshold=threshold)
    ax.legend().remove()
    ax.tick_params(labelsize=7)
    ax.xaxis.label.set_size(7)
    ax.yaxis.label.set_size(7)
    fig.tight_layout(pad=0.3)
    fig.canvas.draw()
    panel = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()          # (H, W, 3)
    frames = np.arange(len(p_anomaly)) + 0.5
    xs = ax.transData.transform(np.c_[frames, np.zeros_like(frames)])[:, 0]
    (_, y0), (_, y1) = ax.transAxes.transform([[0, 0], [1, 1]])
    plt.close(fig)
    h = panel.shape[0]
    rows = (int(h - y1), int(h - y0))
    return panel, np.clip(xs.round().astype(int), 0, panel.shape[1] - 1), rows


def render_video(video_path: Path, frames: pd.DataFrame, out: Path,
                 threshold: float = THRESHOLD) -> Path:
    """Write ``out`` (mp4): the video's frames left, the score curve with a cursor right."""
    s = frames["p_anomaly"].to_numpy(np.float32)
    t = frames["time_s"].to_numpy()
    fps = float((len(t) - 1) / (t[-1] - t[0])) if len(t) > 1 and t[-1] > t[0] else DEFAULT_FPS
    panel, xs, (top, bottom) = curve_panel(s, fps, threshold)
    ph, pw = panel.shape[:2]
    vw, video_frames = rgb_frames(video_path, ph)
    width = vw + pw + ((vw + pw) % 2)
    encoders = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True,
                              text=True).stdout
    codec = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23"] if "libx264" in encoders \
        else ["-c:v", "mpeg4", "-q:v", "4"]

    def encode(tmp: Path) -> None:
        encoder = subprocess.Popen([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-f",
                                    "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{ph}", "-r",
                                    f"{fps:.6f}", "-i", "pipe:", *codec, "-pix_fmt", "yuv420p",
                                    "-movflags", "+faststart", str(tmp)], stdin=subprocess.PIPE)
        canvas = np.full((ph, width, 3), 255, np.uint8)
        i = 0
        try:
            for frame in video_frames:
                canvas[:, :vw] = frame
                canvas[:, vw:vw + pw] = panel
                x = vw + xs[min(i, len(xs) - 1)]
                canvas[top:bottom, max(x - 1, vw):x + 1] = (192, 57, 43)             # cursor
                encoder.stdin.write(canvas.tobytes())
                i += 1
        finally:
            video_frames.close()
            encoder.stdin.close()
            rc = encoder.wait()
        if rc != 0 or i == 0:
            raise UserError(f"{video_path}: rendering {out.name} failed (ffmpeg exit {rc}, "
                            f"{i} frames)")

    return atomic_write(out, encode, keep_suffix=True)     # .tmp.mp4: ffmpeg picks mp4
