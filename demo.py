"""``pipeline demo``: the whole pipeline on generated videos, in a few minutes on a laptop CPU.

The end-to-end driver, beside the CLI: it calls every stage's front door in turn
(``extract.extract_videos``, ``features.datasets.label_store``, ``train.train``,
``evaluate.score_split``), as a user's script would.

1. generate 36 synthetic surveillance-like videos (12 s, 8 fps, 160x120) with ffmpeg:
   normal scenes and scenes with an event of class Arson, Fighting or Road_Accidents inside
   a known interval (``samples/videos.py``), plus their CSV manifest;
2. extract CLIP frame embeddings with the offline tiny CLIP (random weights; a real model
   with ``model=``);
3. label the store from the manifest (train / val carved from train / test);
4. train one AnomalyCLIP run with small demo settings (short videos, tiny model);
5. score the test split: frame table, metrics, per-video plots, ROC / PR curves and the
   interactive report (``scores/test/report.html``).

Everything goes to its own folder (default ``pipeline_out/demo``), the tiny CLIP too
(``models/tiny-clip``), never into the main feature file; re-running reuses what is there
(videos, model, features, a finished run).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from features import paths

log = logging.getLogger("pipeline")

# N x L = 96 frames = one 12 s video at 8 fps; a narrow temporal model and a high learning
# rate, as the tiny dataset (19 training videos) allows.
DEMO_SETTINGS = {"num_segments": 12, "seg_length": 8, "width": 64, "heads": 4, "lr": 2e-3,
                 "warmup_epochs": 2, "epochs": 60, "batch_size": 8, "val_every": 5}
# The demo's models are tiny, so torch runs them on one thread: as fast as two on an idle
# 2-core machine, and 3-4x faster than two when other processes keep the cores busy
# (measured: demo training 6.6 s vs 22.6 s next to two busy loops).
DEMO_THREADS = 1


@dataclass
class DemoResult:
    workdir: Path
    videos: Path
    features: Path
    run: Path
    score: object                                   # evaluate.ScoreResult
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        steps = "  ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
        return "\n".join([
            self.score.summary(), "",
            f"{'videos':<9} {self.videos}  (manifest.csv lists splits, classes, intervals)",
            f"{'features':<9} {self.features}",
            f"{'run':<9} {self.run}",
            f"{'scores':<9} {self.score.out}  (summary.png: ROC and PR; plots/: one per video)",
            f"{'report':<9} {self.score.report}  (open it in a browser)",
            f"{'time':<9} {steps}  total {sum(self.seconds.values()):.0f} s"])


def run_demo(workdir=None, model: str | None = None, device: str = "auto", seed: int = 0,
             epochs: int | None = None, progress: bool | None = None) -> DemoResult:
    """Generate, extract, label, train and score the demo; see the module docstring."""
    import torch

    threads = torch.get_num_threads()
    if model is None:               # a real CLIP encoder does use several threads
        torch.set_num_threads(DEMO_THREADS)
    try:
        return _run(workdir, model, device, seed, epochs, progress)
    finally:
        torch.set_num_threads(threads)


def _run(workdir, model, device, seed, epochs, progress) -> DemoResult:
    from evaluate import score_split
    from extract import extract_videos
    from features.datasets import label_store
    from samples.tiny_clip import make_tiny_clip
    from samples.videos import make_samples
    from train import train
    from train.config import build_config

    settings = dict(DEMO_SETTINGS, **({"epochs": epochs} if epochs else {}))
    build_config(overrides={**settings, "seed": seed, "device": device})   # errors first
    workdir = paths.writable_dir(workdir or paths.workdir() / "demo",
                                 "--workdir" if workdir else None)
    videos, features = workdir / "samples", workdir / "features.h5"
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    manifest = make_samples(videos)
    seconds["videos"] = time.perf_counter() - t

    t = time.perf_counter()
    if model is None:
        model = str(make_tiny_clip(workdir / "models" / "tiny-clip"))
        log.info("using the offline tiny CLIP (random weights) at %s", model)
    extracted = extract_videos(videos, out=features, model=model, device=device,
                               progress=progress)
    if extracted.failed:
        log.warning("%d demo videos failed to extract; see %s", len(extracted.failed),
                    extracted.failures_csv)
    label_store(features, "csv", manifest, val_fraction=0.2, val_seed=0)
    seconds["extract"] = time.perf_counter() - t

    t = time.perf_counter()
    trained = train(features, settings=settings, seed=seed, out=workdir / "runs",
                    device=device, progress=progress is not False)
    seconds["train"] = time.perf_counter() - t

    t = time.perf_counter()
    scored = score_split(features, run=trained.best_run, split="test",
                         out=workdir / "scores" / "test", device=device, progress=progress)
    seconds["score"] = time.perf_counter() - t
    return DemoResult(workdir, videos, features, trained.best_run, scored, seconds)
