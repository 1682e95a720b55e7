"""Synthetic surveillance-like sample videos with known anomalies, made by ffmpeg alone
(for the demo, tests and benchmarks; no stage reads them).

A scene is an ffmpeg ``life`` source (cells being born and dying over a dark ground: a
busy, ever-changing background, different for every seed), in one of a few palettes; half
of the scenes, normal and abnormal alike, also have a grey "pedestrian" box walking slowly
across. An abnormal video shows, inside one known interval, an event of one class, drawn
with ``overlay`` boxes that differ in colour, shape and motion:

    Arson           an orange box with a yellow core, flickering in place
    Fighting        two red upright boxes swaying towards each other
    Road_Accidents  a blue wide box crossing the whole frame fast

``make_samples(folder)`` writes the videos and ``manifest.csv`` next to them (columns video,
split, label, intervals as ``start-end`` inclusive native frames; the format of
``pipeline label --dataset csv``).
"""
from __future__ import annotations

import csv
import logging
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from extract.ffmpeg_bin import ffmpeg_exe
from features.errors import UserError
from features.safe_write import atomic_write
from features.schema import NORMAL_CLASS

log = logging.getLogger("pipeline")

EVENT_CLASSES = ("Arson", "Fighting", "Road_Accidents")
MANIFEST = "manifest.csv"
PALETTES = (  # (live cells, dead cells, mould)
    ("#4c8c4c", "#1a1a22", "#303848"),
    ("#8c8c5a", "#15181a", "#3a3030"),
    ("#5a7aa0", "#101418", "#283828"),
)


@dataclass(frozen=True)
class SampleSpec:
    """One video to generate; ``interval`` is (first, last) native frame of the event."""
    video_id: str
    split: str
    class_name: str
    seed: int
    interval: tuple[int, int] | None = None
    fps: int = 8
    seconds: float = 12.0
    width: int = 160
    height: int = 120
    pedestrian: bool = False

    @property
    def n_frames(self) -> int:
        return int(round(self.fps * self.seconds))


def _event_overlays(spec: SampleSpec, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(colour source, overlay options) per box of the event, times in seconds."""
    w, h, fps = spec.width, spec.height, spec.fps
    first, last = spec.interval
    t0, span = first / fps, max((last + 1 - first) / fps, 1e-3)
    when = f"between(n,{first},{last})"
    u = f"((t-{t0:.4f})/{span:.4f})"                       # 0 -> 1 over the event
    if spec.class_name == "Arson":
        x, y = int(rng.integers(10, w - 50)), int(rng.integers(h // 3, h - 50))
        flicker = "3*sin(t*23)"
        return [("c=#ff7a10:s=40x44", f"x={x}+{flicker}:y={y}-{flicker}:enable='{when}'"),
                ("c=#ffe030:s=16x20", f"x={x + 12}-{flicker}:y={y + 14}:enable='{when}'")]
    if spec.class_name == "Fighting":
        cx, y = int(rng.integers(10, w - 70)), int(rng.integers(6, h - 52))
        sway = "10*abs(sin(t*7))"
        return [("c=#e01818:s=20x44", f"x={cx}+{sway}:y={y}:enable='{when}'"),
                ("c=#e01818:s=20x44", f"x={cx + 42}-{sway}:y={y}+2:enable='{when}'")]
    if spec.class_name == "Road_Accidents":
        y = int(rng.integers(10, h - 34))
        go_right = bool(rng.integers(0, 2))
        x = f"4+{w - 56}*{u}" if go_right else f"{w - 52}-{w - 56}*{u}"
        return [("c=#2a5cff:s=48x24", f"x='{x}':y={y}:enable='{when}'")]
    raise ValueError(f"unknown event class {spec.class_name!r}; known: {EVENT_CLASSES}")


def filter_graph(spec: SampleSpec) -> str:
    """The ffmpeg -filter_complex graph drawing ``spec``, ending in [out]."""
    rng = np.random.default_rng(spec.seed)
    live, dead, mould = PALETTES[int(rng.integers(len(PALETTES)))]
    w, h, fps = spec.width, spec.height, spec.fps
    chains = [f"life=s={w}x{h}:r={fps}:mold=10:ratio={rng.uniform(0.1, 0.3):.2f}:"
              f"seed={spec.seed}:life_color={live}:death_color={dead}:mold_color={mould}[s0]"]
    boxes: list[tuple[str, str]] = []
    if spec.pedestrian:
        y = int(rng.integers(10, h - 30))
        boxes.append(("c=#a0a0a0:s=8x20", f"x='mod(10+{rng.uniform(4, 8):.1f}*t,{w})':y={y}"))
    if spec.interval is not None:
        boxes += _event_overlays(spec, rng)
    for k, (colour, where) in enumerate(boxes):
        chains.append(f"color={colour}:r={fps}[b{k}]")
        chains.append(f"[s{k}][b{k}]overlay={where}:shortest=1[s{k + 1}]")
    chains.append(f"[s{len(boxes)}]trim=end_frame={spec.n_frames},format=yuv420p[out]")
    return ";".join(chains)


def write_sample_video(spec: SampleSpec, path: str | Path) -> Path:
    """Encode ``spec`` to ``path`` (H.264 when available), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def encode(tmp: Path) -> None:
        cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-filter_complex",
               filter_graph(spec), "-map", "[out]", "-c:v", "libx264", "-preset", "veryfast",
               "-crf", "20", "-threads", "1", str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:                      # builds without libx264
            cmd[cmd.index("libx264") - 1:cmd.index("-threads")] = ["-c:v", "mpeg4", "-q:v", "3"]
            done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"
            raise UserError(f"{path}: ffmpeg could not generate the sample video ({last})")

    return atomic_write(path, encode, keep_suffix=True)     # .tmp.mp4: ffmpeg picks mp4


def plan_samples(per_class: dict[str, int] | None = None, seed: int = 0, fps: int = 8,
                 seconds: float = 12.0, size: tuple[int, int] = (160, 120),
                 classes=EVENT_CLASSES) -> list[SampleSpec]:
    """The default set: per split, ``per_class[split]`` abnormal videos of every class and
    as many normal videos as abnormal ones in total (train 4 per class, test 2)."""
    per_class = per_class or {"train": 4, "test": 2}
    rng = np.random.default_rng(seed)
    n = int(round(fps * seconds))
    specs = []
    for split, k in per_class.items():
        names = [NORMAL_CLASS] * (k * len(classes)) + [c for c in classes for _ in range(k)]
        counts: dict[str, int] = {}
        for name in names:
            i = counts[name] = counts.get(name, -1) + 1
            interval = None
            if name != NORMAL_CLASS:
                length = int(rng.integers(int(0.25 * n), int(0.42 * n) + 1))
                first = int(rng.integers(int(0.08 * n), n - length - int(0.05 * n)))
                interval = (first, first + length - 1)
            specs.append(SampleSpec(f"{split}_{name}_{i:02d}", split, name,
                                    int(rng.integers(1, 2**31 - 1)), interval, fps, seconds,
                                    size[0], size[1], pedestrian=bool(rng.integers(0, 2))))
    return specs


def write_manifest(specs: list[SampleSpec], path: Path) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["video", "split", "label", "intervals"])
            for s in specs:
                out.writerow([f"{s.video_id}.mp4", s.split, s.class_name,
                              f"{s.interval[0]}-{s.interval[1]}" if s.interval else ""])

    return atomic_write(path, write)


def make_samples(folder: str | Path, specs: list[SampleSpec] | None = None,
                 workers: int = 2) -> Path:
    """Write the sample videos (skipping those already there) and their manifest into
    ``folder``; return the manifest's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specs = specs if specs is not None else plan_samples()
    todo = [s for s in specs if not (folder / f"{s.video_id}.mp4").exists()]
    if todo:
        log.info("generating %d sample videos in %s", len(todo), folder)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(lambda s: write_sample_video(s, folder / f"{s.video_id}.mp4"), todo))
    return write_manifest(specs, folder / MANIFEST)
