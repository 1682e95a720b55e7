"""Training memory and step time of the temporal models, side by side.

Three models on the same batches, a preset's shapes (default ucf-crime: 64 windows of
32 x 16 rows of 512-d features, width 256), the tiny text tower:
  residual      the model this project used before (plain residual blocks, one conv
                feed-forward per layer; 5.4 M parameters at E 256): bench/residual_temporal.py
  reversible    the reference's model (two reversible blocks per layer; 10.1 M), backward
                by recomputation (train/model/reversible.py): what training uses
  rev-autograd  the same reversible model with plain autograd (every activation kept):
                what the recomputation saves

Memory, each model in a fresh process:
  saved         bytes autograd keeps for the backward pass during one forward (parameters
                excluded): the activation memory
  peak          peak resident memory (RSS) over a training step minus the resident memory
                before it (CPU), or CUDA max allocated minus allocated before (GPU)
Time: one process holding all three models, steps interleaved (A B C A B C ...) so that a
busy machine slows all of them alike; the median per model and the ratio to residual.

    python bench/temporal_memory.py                      # ucf-crime shapes, 3 timed rounds
    python bench/temporal_memory.py --batch-size 16 --rounds 2   # quicker
    python bench/temporal_memory.py --device cuda --rounds 10
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import OUT, model_path, status_mib                  # noqa: E402
from bench.residual_temporal import ResidualTemporalModel             # noqa: E402
from features.clip_loader import resolve_device                       # noqa: E402
from features.datasets import ucf_crime                               # noqa: E402
from features.schema import NORMAL_CLASS                              # noqa: E402
from train.config import build_config                                 # noqa: E402
from train.model import AnomalyCLIP                                   # noqa: E402
from train.model.prompts import PromptLearner, load_text_tower              # noqa: E402
from train.model.reversible import saved_tensor_bytes                       # noqa: E402
from train.run import make_optimizer, train_step                      # noqa: E402

VARIANTS = ("residual", "reversible", "rev-autograd")
CLASSES = ucf_crime.CLASS_NAMES                  # the 13 anomaly classes and Normal, sorted


def build(variant: str, config, tower, device):
    """(model, optimizer, schedule) of one variant, seeded alike."""
    torch.manual_seed(0)
    prompts = PromptLearner(tower, CLASSES, config.n_ctx, config.ctx_init_std)
    model = AnomalyCLIP(CLASSES, CLASSES.index(NORMAL_CLASS), tower.clip.embed_dim,
                        config.num_segments, config.seg_length, config.width, config.depth,
                        config.heads, config.concat_selector, torch.randn(tower.clip.embed_dim),
                        prompts)
    if variant == "residual":
        torch.manual_seed(0)
        model.temporal = ResidualTemporalModel(tower.clip.embed_dim, config.width, config.depth,
                                               config.heads, config.num_segments,
                                               config.seg_length)
    model = model.to(device)
    if variant == "rev-autograd":
        model.temporal.layers.recompute = False
    optimizer, schedule = make_optimizer(model, config.with_overrides({"warmup_epochs": 0}), 100)
    return model.train(), optimizer, schedule


def batch(config, dim: int, step: int):
    """A batch of random windows: first half abnormal (cycling classes), second half normal."""
    g = torch.Generator().manual_seed(step)
    b, half = config.batch_size, config.batch_size // 2
    x = torch.randn(b, config.num_segments, config.seg_length, dim, generator=g) * 3
    abnormal = [i for i, c in enumerate(CLASSES) if c != NORMAL_CLASS]
    y = torch.tensor([abnormal[i % len(abnormal)] for i in range(half)]
                     + [CLASSES.index(NORMAL_CLASS)] * half)
    return x, y


def child(args) -> dict:
    """One variant in this (fresh) process: memory of a step."""
    device = resolve_device(args.device)
    config = build_config(args.preset, overrides={"batch_size": args.batch_size,
                                                  "device": str(device)})
    tower = load_text_tower(model_path("tiny"), None, device)
    model, optimizer, schedule = build(args.child, config, tower, device)
    generator = torch.Generator().manual_seed(0)
    x, y = batch(config, tower.clip.embed_dim, 0)
    train_step(model, optimizer, schedule, x, y, config, generator)     # allocate Adam state
    saved = saved_tensor_bytes(model, x.to(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        Path("/proc/self/clear_refs").write_text("5")   # reset the peak (VmHWM) to now
        before = status_mib("VmRSS")
    x, y = batch(config, tower.clip.embed_dim, 1)
    train_step(model, optimizer, schedule, x, y, config, generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - before) / 2**20
    else:
        peak = status_mib("VmHWM") - before
    n_params = sum(p.numel() for p in model.temporal.parameters())
    return {"variant": args.child, "saved_mib": saved / 2**20, "peak_mib": peak,
            "temporal_params": n_params}


def timing(args) -> dict[str, list[float]]:
    """Interleaved training steps of the three variants in one process: seconds per step."""
    device = resolve_device(args.device)
    config = build_config(args.preset, overrides={"batch_size": args.batch_size,
                                                  "device": str(device)})
    tower = load_text_tower(model_path("tiny"), None, device)
    runs = {v: build(v, config, tower, device) for v in VARIANTS}
    generator = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds + 1):                      # round 0 warms up
        x, y = batch(config, tower.clip.embed_dim, r)
        for v, (model, optimizer, schedule) in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            train_step(model, optimizer, schedule, x, y, config, generator)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if r:
                times[v].append(time.perf_counter() - t)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="ucf-crime")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="timed steps per model")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    memory = {}
    for v in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--child", v, "--preset", args.preset,
                              "--batch-size", str(args.batch_size), "--device", args.device],
                             capture_output=True, text=True, cwd=ROOT, check=True)
        memory[v] = json.loads(out.stdout.strip().splitlines()[-1])
    times = timing(args)
    config = build_config(args.preset)
    print(f"\n{args.preset} shapes: batch {args.batch_size} x {config.num_segments}x"
          f"{config.seg_length}, width {config.width}, depth {config.depth}; {args.device}, "
          f"{torch.get_num_threads()} threads; {args.rounds} interleaved timed steps each")
    print(f"{'model':<13} {'params':>10} {'saved MiB':>10} {'/ resid':>8} {'peak MiB':>9} "
          f"{'/ resid':>8} {'step s':>8} {'/ resid':>8}")
    base = memory["residual"]
    base_t = statistics.median(times["residual"])
    rows = []
    for v in VARIANTS:
        m, t = memory[v], statistics.median(times[v])
        rows.append({**m, "step_s": t, "step_s_all": times[v]})
        print(f"{v:<13} {m['temporal_params']:>10,} {m['saved_mib']:>10.0f} "
              f"{m['saved_mib'] / base['saved_mib']:>8.2f} {m['peak_mib']:>9.0f} "
              f"{m['peak_mib'] / base['peak_mib']:>8.2f} {t:>8.2f} {t / base_t:>8.2f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "temporal_memory.json").write_text(json.dumps({**vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
