"""Stage-two input speed: training steps/s with windows read from HDF5 vs from RAM.

Writes a synthetic labelled store once (cached under bench/out/), default UCF-Crime scale:
1,600 training videos (800 normal / 800 abnormal), mean 4,000 rows of 512-d fp16 (6.5 GB).
Then, side by side in one process and on the same batches (same seed):
  loader   windows/s of the DataLoader alone (no model): HDF5 (lazy per-worker file,
           one multi-hyperslab read per window) vs in-memory (one float16 array)
  steps    training steps/s of the real step (preset model, AdamW) fed by each loader
  ratio    steps/s HDF5 / steps/s memory (target >= 0.9)

    python bench/train_io.py --small                     # 160 videos x mean 1,000 rows
    python bench/train_io.py                             # UCF-Crime scale (writes 6.5 GB once)
    python bench/train_io.py --device cuda --steps 50    # where a GPU makes steps fast
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.clip_loader import resolve_device                      # noqa: E402
from features.store import open_store                                # noqa: E402
from samples.synthetic import make_synthetic_store                   # noqa: E402
from bench.common import OUT, model_path                                 # noqa: E402
from train.config import build_config                                # noqa: E402
from train.run import initial_model, make_loader, make_optimizer, train_step  # noqa: E402
from train.splits import training_split                              # noqa: E402
from train.windows import HDF5Rows, MemoryRows                       # noqa: E402

def bench_store(videos: int, mean_rows: int, model: str) -> Path:
    """The synthetic store of this scale, written once (train split only)."""
    path = OUT / f"train_store_{videos}x{mean_rows}_{Path(model).name}.h5"
    if not path.exists():
        print(f"writing {path} ({videos} videos x mean {mean_rows} rows, once)...", flush=True)
        t = time.time()
        spread = mean_rows // 2
        make_synthetic_store(path, model, n_train_normal=videos // 2,
                             n_train_abnormal=videos - videos // 2, n_test_normal=0,
                             n_test_abnormal=0, n_rows=(mean_rows - spread, mean_rows + spread),
                             dataset="ucf-crime-scale", seed=0)
        print(f"  {path.stat().st_size / 2**30:.2f} GiB in {time.time() - t:.0f} s")
    return path


def loader_rate(loader, batches, n: int) -> float:
    """Windows/s of the loader alone over ``n`` batches (after one warm-up batch)."""
    batches.set_epoch(1)
    it = iter(loader)
    next(it)
    t, count = time.perf_counter(), 0
    for _ in range(n):
        x, _ = next(it)
        count += len(x)
    return count / (time.perf_counter() - t)


def step_rates(model, config, loaders: dict, n: int, device) -> dict:
    """Training steps/s per loader, timed in interleaved rounds (one step of each loader per
    round, after one warm-up step each) so machine noise hits both alike."""
    optimizer, schedule = make_optimizer(model, config, config.steps_per_epoch)
    generator = torch.Generator().manual_seed(0)
    model.train()
    iters, seconds = {}, dict.fromkeys(loaders, 0.0)
    for name, (loader, batches) in loaders.items():
        batches.set_epoch(2)
        iters[name] = iter(loader)
        x, y = next(iters[name])
        train_step(model, optimizer, schedule, x, y, config, generator)
    for _ in range(n):
        for name in loaders:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            x, y = next(iters[name])                 # waiting for data counts
            train_step(model, optimizer, schedule, x, y, config, generator)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds[name] += time.perf_counter() - t
    return {name: n / s for name, s in seconds.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=1600)
    ap.add_argument("--mean-rows", type=int, default=4000)
    ap.add_argument("--small", action="store_true", help="160 videos x mean 1,000 rows")
    ap.add_argument("--model", default="tiny", help="tiny | vit-b-16 (random) | path")
    ap.add_argument("--preset", default="ucf-crime")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    ap.add_argument("--batch-size", type=int, default=None, help="[default: the preset's 64]")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers for HDF5")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    if args.small:
        args.videos, args.mean_rows = 160, 1000
    model_id = model_path(args.model)
    store_path = bench_store(args.videos, args.mean_rows, model_id)
    device = resolve_device(args.device)
    n_load = max(args.steps, 10)
    settings = {"device": str(device), "val_fraction": 0.0,
                "steps_per_epoch": max(n_load, args.steps) + 2}
    if args.batch_size:
        settings["batch_size"] = args.batch_size
    config = build_config(args.preset, overrides=settings)
    with open_store(store_path) as store:
        split = training_split(store, 0.0, 0)
        model = initial_model(store, split, config, device)
        t = time.time()
        memory = MemoryRows(store, list(split.train["video_id"]))
        cache_s = time.time() - t
    hdf5 = HDF5Rows(store_path, list(split.train["video_id"]))
    mem_loader, mem_batches = make_loader(split, memory, config.with_overrides(
        {"loader_workers": 0}), device)
    h5_loader, h5_batches = make_loader(split, hdf5, config.with_overrides(
        {"loader_workers": args.workers}), device)
    rates = {
        "loader_windows_per_s": {"memory": loader_rate(mem_loader, mem_batches, n_load),
                                 "hdf5": loader_rate(h5_loader, h5_batches, n_load)},
        "steps_per_s": step_rates(model, config, {"memory": (mem_loader, mem_batches),
                                                  "hdf5": (h5_loader, h5_batches)},
                                  args.steps, device),
    }
    ratio = rates["steps_per_s"]["hdf5"] / rates["steps_per_s"]["memory"]
    gib = memory.data.nbytes / 2**30
    print(f"\nstage-two input, {args.videos} videos x mean {args.mean_rows} rows ({gib:.2f} GiB "
          f"fp16), preset {args.preset}, batch {config.batch_size}, {device}, "
          f"{torch.get_num_threads()} threads, HDF5 loader workers {args.workers}")
    print(f"  cache into RAM           {cache_s:8.1f} s")
    for what, unit in (("loader_windows_per_s", "windows/s"), ("steps_per_s", "steps/s")):
        m, h = rates[what]["memory"], rates[what]["hdf5"]
        print(f"  {what:<24} memory {m:9.2f}  hdf5 {h:9.2f} {unit}  (hdf5/memory {h / m:.2f})")
    print(f"  ratio steps/s HDF5 / memory: {ratio:.2f} (target >= 0.9)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "train_io.json").write_text(json.dumps({**vars(args), **rates, "ratio": ratio,
                                                   "cache_s": cache_s, "device": str(device)},
                                                  indent=2))


if __name__ == "__main__":
    main()
