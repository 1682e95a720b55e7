"""Small test videos made with ffmpeg's lavfi sources, and ffmpeg-only reference readings."""
from __future__ import annotations

import re
import subprocess
from fractions import Fraction
from pathlib import Path

from extract.ffmpeg_bin import ffmpeg_exe


def make_video(path: Path, size: str = "320x240", rate: str = "25", seconds: float = 2.0,
               codec: str = "libx264", audio: bool = False, vfr: bool = False,
               extra: list[str] | None = None, source: str = "testsrc2",
               rotate: int = 0) -> Path:
    """A short clip from a lavfi source. ``vfr``: frames after the first half of the clip
    are spaced twice as far apart (a true variable-frame-rate stream). ``rotate``: display
    rotation metadata in degrees, as phones write it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
           "-i", f"{source}=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac",
                "-shortest"]
    vf = []
    if vfr:
        half = int(float(Fraction(rate)) * seconds / 2)
        vf.append(f"setpts='if(lt(N,{half}),N,{half}+2*(N-{half}))/FRAME_RATE/TB'")
        cmd += ["-fps_mode", "vfr"]
    if vf:
        cmd += ["-vf", ",".join(vf)]
    cmd += ["-c:v", codec] + (["-pix_fmt", "yuv420p"] if codec == "libx264" else [])
    target = path.with_name("unrotated_" + path.name) if rotate else path
    cmd += (extra or []) + [str(target)]
    subprocess.run(cmd, check=True)
    if rotate:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-display_rotation", str(rotate),
                        "-i", str(target), "-c", "copy", str(path)], check=True)
        target.unlink()
    return path


def reference_timestamps_ms(path: Path) -> list[float]:
    """Presentation times of every decoded frame, read independently with ffmpeg's framecrc
    muxer (no filters, frames passed through as decoded)."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0",
                          "-fps_mode", "passthrough", "-f", "framecrc", "-"],
                         capture_output=True, text=True, check=True).stdout
    tb = Fraction(re.search(r"#tb 0: (\d+)/(\d+)", out).group(0).split(": ")[1])
    pts = [int(line.split(",")[2]) for line in out.splitlines() if line and line[0] != "#"]
    return [float(p * tb * 1000) for p in pts]


def decode_full_frames(path: Path, max_frames: int):
    """The first frames at their coded resolution as PIL images (display orientation; pixel
    aspect NOT applied: the reference resize does that), and the display size, for the
    independent reference preprocessing. ffmpeg only converts YUV to RGB here, in the
    stream's own matrix and range, with the chroma interpolated to full resolution
    (bicubic, ``full_chroma_int``; swscale's default would repeat chroma samples)."""
    import numpy as np
    from PIL import Image

    from extract.probe import probe

    info = probe(str(path))
    w, h = (info.height, info.width) if info.rotation % 180 == 90 else (info.width, info.height)
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0",
                          "-vf", f"scale={w}:{h}:flags=bicubic+full_chroma_int+accurate_rnd",
                          "-frames:v", str(max_frames), "-fps_mode", "passthrough",
                          "-pix_fmt", "rgb24", "-f", "rawvideo", "-"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
    return [Image.fromarray(f) for f in frames], info.display_size


def packet_pts(path: Path) -> list[int]:
    """The video packets' presentation timestamps in decode (file) order, from a stream copy:
    out of order when the stream has B-frames."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0",
                          "-c", "copy", "-f", "framecrc", "-"],
                         capture_output=True, text=True, check=True).stdout
    return [int(line.split(",")[2]) for line in out.splitlines() if line.startswith("0,")]


def container_start_s(path: Path) -> float:
    """The container's start time as ffmpeg reports it ("start: 1.400000")."""
    header = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                            capture_output=True, text=True).stderr
    return float(re.search(r"start: (-?[\d.]+)", header).group(1))
