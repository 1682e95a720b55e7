"""Detection and recognition of the temporal models on synthetic data, side by side.

Trains the reference's reversible temporal model and the earlier residual one
(bench/residual_temporal.py, the baseline) with the same settings and seeds, one
``train(...)`` call per model and seed in this process (the baseline is swapped in here, so
no Dask workers), then scores every run on the test split of its store: frame AUC and mAUC
(train.validate, the metrics validation uses), mean and spread over seeds.

Two synthetic stores (samples/synthetic.py; 48 training videos, 3 anomaly classes):
  text-aligned  anomalies move frames towards the CLIP text of their class (the friendly
                case AnomalyCLIP is built on)
  text-blind    anomalies move frames along random directions
Both models see the same windows, the same validation carve and selection (the default
``validated`` protocol: best epoch on validation videos' video AUC).

    python bench/temporal_quality.py                     # 4 seeds, ~30 min on 2 cores
    python bench/temporal_quality.py --seeds 0,1 --epochs 10   # quicker
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import OUT, model_path                              # noqa: E402
from bench.residual_temporal import residual_model                    # noqa: E402
from features.schema import NORMAL_CLASS                              # noqa: E402
from features.store import open_store                                 # noqa: E402
from samples.synthetic import make_synthetic_store                    # noqa: E402
from train import train                                               # noqa: E402
from train.rundir import load_run                                 # noqa: E402
from train.validate import validation_metrics                        # noqa: E402
from train.windows import MemoryRows                                  # noqa: E402

MODELS = ("residual", "reversible")


def test_metrics(run_dir: Path, store_path: Path) -> dict:
    """Frame AUC / AP / mAUC of a run on the test split of its store."""
    model, _ = load_run(run_dir)
    with open_store(store_path) as store:
        meta = store.metadata()
        meta = meta[meta["split"] == "test"].reset_index(drop=True)
        source = MemoryRows(store, list(meta["video_id"]))
        frames = {v: store.frame_index(v) for v in meta["video_id"]}
        return validation_metrics(model, source, meta, frames, store.class_names, NORMAL_CLASS)


def fmt(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} +- {spread:.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--strength", type=float, default=3.0,
                    help="anomaly shift (feature norm ~22, frame noise 1): lower is harder")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    clip = model_path("tiny")
    settings = dict(num_segments=16, seg_length=8, width=64, depth=1, heads=4, batch_size=16,
                    lr=args.lr, warmup_epochs=2, epochs=args.epochs, device="cpu")
    results = {}
    t0 = time.time()
    for name, aligned in (("text-aligned", True), ("text-blind", False)):
        store = OUT / f"quality_{name}_s{args.strength:g}.h5"
        if not store.exists():
            make_synthetic_store(store, clip, align_to_text=aligned, n_rows=(64, 256),
                                 strength=args.strength, seed=11)
        for model, seed in ((m, s) for m in MODELS for s in seeds):
            runs = OUT / f"quality_runs_{name}_s{args.strength:g}" / model
            with residual_model() if model == "residual" else contextlib.nullcontext():
                row = train(store, settings=settings, seed=seed, out=runs,
                            progress=False).table.iloc[0]
                if row["status"] != "ok":
                    raise SystemExit(f"{model} seed {seed} failed: {row['error']}")
                m = test_metrics(runs / row["run_dir"], store)
            results.setdefault(name, {}).setdefault(model, []).append(
                {"seed": seed, "auc": m["auc"], "mauc": m["mauc"], "ap": m["ap"],
                 "best_epoch": int(row["best_epoch"]), "seconds": float(row["seconds"])})
    print(f"\n{len(seeds)} seeds per model, {args.epochs} epochs, lr {args.lr:g}, anomaly "
          f"strength {args.strength:g}, "
          f"N x L {settings['num_segments']} x {settings['seg_length']}, width "
          f"{settings['width']}; {time.time() - t0:.0f} s in all")
    print(f"{'store':<13} {'model':<11} {'test AUC':>16} {'test mAUC':>16} {'test AP':>16} "
          f"{'s / run':>8}")
    for name, by_model in results.items():
        for model in MODELS:
            rows = by_model[model]
            print(f"{name:<13} {model:<11} {fmt([r['auc'] for r in rows]):>16} "
                  f"{fmt([r['mauc'] for r in rows]):>16} {fmt([r['ap'] for r in rows]):>16} "
                  f"{statistics.mean(r['seconds'] for r in rows):>8.0f}")
        diffs = [a["auc"] - b["auc"] for a, b in zip(by_model["reversible"], by_model["residual"])]
        print(f"{'':<13} reversible - residual AUC per seed: "
              + ", ".join(f"{d:+.3f}" for d in diffs))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"temporal_quality_s{args.strength:g}.json").write_text(json.dumps(
        {**vars(args), "settings": settings, "results": results}, indent=2))


if __name__ == "__main__":
    main()
