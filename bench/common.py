"""What every benchmark shares: the output folder, the offline models by short name and
generated clips."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from extract.ffmpeg_bin import ffmpeg_exe  # noqa: E402
from features.safe_write import atomic_write  # noqa: E402
from samples.tiny_clip import make_random_vit_b16, make_tiny_clip  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"   # ignored by git: clips, stores, models, JSON


def status_mib(key: str = "VmRSS") -> float:
    """A memory line of /proc/self/status in MiB: VmRSS (resident now), VmHWM (its peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def model_path(name: str) -> str:
    """``tiny`` / ``free`` (width 16, one layer: a near-free encoder) / ``vit-b-16`` (random
    weights, written once under bench/out) or as given."""
    if name == "tiny":
        return str(make_tiny_clip(OUT / "models" / "tiny-clip"))
    if name == "free":
        return str(make_tiny_clip(OUT / "models" / "free-clip", vision_width=16,
                                  vision_layers=1))
    if name == "vit-b-16":
        return str(make_random_vit_b16(OUT / "models" / "vit-b-16-random"))
    return name


def make_clips(n: int, seconds: float, size: str, rate: int) -> list[Path]:
    """``n`` H.264 + AAC clips (testsrc2 / testsrc / smptehdbars), made once under bench/out."""
    folder = OUT / f"clips_{n}x{seconds:g}s_{size}_{rate}fps"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"clip{i:02d}.mp4" for i in range(n)]

    def make(i):
        if paths[i].exists():
            return
        src = ["testsrc2", "testsrc", "smptehdbars"][i % 3]
        atomic_write(paths[i], lambda tmp: subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
             f"{src}=size={size}:rate={rate}:duration={seconds}", "-f", "lavfi",
             "-i", f"sine=frequency={300 + 50 * i}:duration={seconds}",
             "-c:v", "libx264", "-preset", "veryfast", "-threads", "1",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(tmp)], check=True),
            keep_suffix=True)

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(make, range(n)))
    return paths
