"""What every benchmark shares: the output folder and the offline models by short name."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from features.tiny_clip import make_random_vit_b16, make_tiny_clip  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"   # ignored by git: clips, stores, models, JSON


def status_mib(key: str = "VmRSS") -> float:
    """A memory line of /proc/self/status in MiB: VmRSS (resident now), VmHWM (its peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def model_path(name: str) -> str:
    """``tiny`` / ``vit-b-16`` (random weights, written once under bench/out) or as given."""
    if name == "tiny":
        return str(make_tiny_clip(OUT / "models" / "tiny-clip"))
    if name == "vit-b-16":
        return str(make_random_vit_b16(OUT / "models" / "vit-b-16-random"))
    return name
