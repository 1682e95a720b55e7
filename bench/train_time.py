"""Time (and memory) of a full preset training run at dataset scale, measured and extrapolated.

A training step costs the same whatever the video lengths (a batch is always B windows of
N x L rows), and validation costs in proportion to the rows scored, so this measures
  step      seconds per training step (preset model and batch, windows from RAM)
  val       seconds per 1,000 validation rows scored (the inference procedure)
  memory    peak memory of training: CUDA max allocated, or process peak RSS on CPU, and the
            rise over the resident size before the first step
  resume    seconds to write the resumable state after an epoch (train/resume.py), and
            their share of an epoch at the target scale
on the synthetic store of bench/train_io.py, and extrapolates to the preset's epochs at the
target scale (default UCF-Crime: 1,600 training videos, mean 4,000 rows; 20% carved for
validation):  total = epochs x (steps_per_epoch x step + val_rows x val).

    python bench/train_time.py --small --steps 2         # measure on the small store
    python bench/train_time.py                           # UCF-Crime scale store (6.5 GB)
    python bench/train_time.py --device cuda --steps 50  # on a GPU
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import status_mib                                   # noqa: E402
from bench.train_io import OUT, bench_store, model_path              # noqa: E402
from features.clip_loader import resolve_device                      # noqa: E402
from features.store import open_store                                # noqa: E402
from train import resume                                             # noqa: E402
from train.config import TrainConfig, build_config                   # noqa: E402
from train.model.inference import predict_videos                           # noqa: E402
from train.run import initial_model, make_loader, make_optimizer, train_step  # noqa: E402
from train.splits import training_split                              # noqa: E402
from train.windows import MemoryRows                                 # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=1600, help="target scale: training videos")
    ap.add_argument("--mean-rows", type=int, default=4000, help="target scale: mean rows")
    ap.add_argument("--small", action="store_true",
                    help="measure on the small store (160 x 1,000); extrapolate to the target")
    ap.add_argument("--model", default="tiny", help="tiny | vit-b-16 (random) | path")
    ap.add_argument("--preset", default="ucf-crime")
    ap.add_argument("--epochs", type=int, default=None, help="[default: the preset's]")
    ap.add_argument("--steps", type=int, default=5, help="timed training steps")
    ap.add_argument("--val-videos", type=int, default=8, help="videos scored for timing")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    store_videos, store_rows = (160, 1000) if args.small else (args.videos, args.mean_rows)
    model_id = model_path(args.model)
    store_path = bench_store(store_videos, store_rows, model_id)
    device = resolve_device(args.device)
    config = build_config(args.preset, overrides={"device": str(device), "val_fraction": 0.0,
                                                  "steps_per_epoch": args.steps + 2})
    epochs = args.epochs or config.epochs
    with open_store(store_path) as store:
        split = training_split(store, 0.0, 0)
        model = initial_model(store, split, config, device)
        source = MemoryRows(store, list(split.train["video_id"]))
    loader, batches = make_loader(split, source, config, device)
    optimizer, schedule = make_optimizer(model, config, len(batches))
    generator = torch.Generator().manual_seed(0)
    batches.set_epoch(1)
    it = iter(loader)
    model.train()
    rss_before = status_mib("VmRSS")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_step(model, optimizer, schedule, *next(it), config, generator)      # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(args.steps):
        train_step(model, optimizer, schedule, *next(it), config, generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    step_s = (time.perf_counter() - t) / args.steps
    if device.type == "cuda":
        peak = {"cuda_max_allocated_mib": torch.cuda.max_memory_allocated() / 2**20}
    else:
        peak = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "rise_over_start_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                - rss_before}
    # the resumable state written after every epoch (train/resume.py), as training writes it
    state_dir = OUT / "resume_state"
    state_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    resume.save(state_dir, "bench", resume.RunProgress(epoch=1), model, optimizer, schedule,
                generator)
    save_s = time.perf_counter() - t
    state_mib = (state_dir / resume.STATE).stat().st_size / 2**20
    model.eval()
    videos = [source.video(i) for i in range(min(args.val_videos, len(source.video_ids)))]
    rows = sum(len(v) for v in videos)
    t = time.perf_counter()
    for _ in predict_videos(model, videos, device):
        pass
    val_s_per_krow = (time.perf_counter() - t) / rows * 1000

    # target scale, as `pipeline train --preset` runs it: val_fraction carved per class
    val_fraction = TrainConfig().val_fraction
    per_class_train = round(args.videos / 2 * (1 - val_fraction))
    steps_per_epoch = math.ceil(per_class_train / (config.batch_size // 2))
    val_rows = args.videos * val_fraction * args.mean_rows
    epoch_s = steps_per_epoch * step_s + val_rows / 1000 * val_s_per_krow
    total_h = epochs * epoch_s / 3600
    print(f"\n{args.preset} preset (width {config.width}, depth {config.depth}, batch "
          f"{config.batch_size} x {config.num_segments}x{config.seg_length}), {device}, "
          f"{torch.get_num_threads()} threads, text tower {Path(model_id).name}")
    print(f"  training step            {step_s:8.2f} s   (mean of {args.steps})")
    print(f"  validation               {val_s_per_krow:8.3f} s per 1,000 rows ({rows} rows)")
    for k, v in peak.items():
        print(f"  {k:<24} {v:8.0f} MiB")
    print(f"  at {args.videos} videos x mean {args.mean_rows} rows: {steps_per_epoch} steps + "
          f"{val_rows:,.0f} val rows per epoch = {epoch_s / 60:.1f} min/epoch")
    print(f"  {epochs} epochs: {total_h:.1f} h")
    print(f"  resume state per epoch   {save_s:8.2f} s   ({state_mib:.0f} MiB, fsynced): "
          f"{save_s / epoch_s:.4f} of an epoch")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "train_time.json").write_text(json.dumps({
        **vars(args), "device": str(device), "step_s": step_s,
        "val_s_per_1000_rows": val_s_per_krow, **peak, "steps_per_epoch": steps_per_epoch,
        "epoch_s": epoch_s, "epochs": epochs, "total_h": total_h,
        "threads": torch.get_num_threads(), "resume_save_s": save_s,
        "resume_state_mib": state_mib}, indent=2))


if __name__ == "__main__":
    main()
