"""Weak labels on hard data (issue 24): AnomalyCLIP against MIL, novelty, a training-free
prototype classifier and a per-frame oracle, side by side.

Two stores of samples/hard.py (UCF-Crime's 13 classes + Normal in 5 families; 200 + 200
training videos of which training carves 20% for validation, 120 test videos; --quick: half
as many; the offline tiny CLIP): ``text-blind`` (class directions unrelated to the class
text) and ``text-aligned`` (each at cosine 0.6 with its class text). Normal videos move on
a low-rank manifold around per-video scenes, half of all videos carry harmless distractor
events, anomalies are short. On each, test-split metrics (mean and range over seeds):

  novelty (centroid)   distance to the normal training frames' mean (no training)
  novelty (residual)   norm off the normal frames' top-32 PCA (no training)
  MIL ranking          Sultani et al. 2018 (bench/mil_baseline.py), 3,000 iterations
  prototype            the training-free prototype classifier (train/baselines.py): top-1
  oracle               multinomial logistic regression on frame labels (the training
                       videos' intervals, which nothing else sees): the ceiling
  custom-before        the custom preset before issue 24 (direction_init=text+data)
  +residual            ... with directions started off the normal manifold (residual)
  +concat              ... and the temporal model fed [S, x - m] (concat_selector)
  custom               the custom preset as it is (+ selector_logit)
  faithful / paper-numbers  (with --variants) the method with text directions at the
                       custom lr / at UCF-Crime's lr 1e-5, 50 epochs

frame AUC, mAUC and top-1 video class accuracy on the test videos (row level, intervals as
labels; train.validate). AnomalyCLIP runs go through Dask (train.sweep.run_many, one
worker per core) with a benchmark-sized model (N x L = 16 x 8, width 64: the UCF-Crime
preset's 32 x 16 x 256 takes ~13 s a step on 2 CPU cores).

    python bench/weak_prior.py                 # 2 regimes x 3 seeds
    python bench/weak_prior.py --quick         # 1 seed, 200 training / 60 test videos
    python bench/weak_prior.py --quick --variants custom-before,+residual,+concat,custom
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import OUT, model_path                             # noqa: E402
from bench.mil_baseline import score_mil, train_mil                  # noqa: E402
from features.schema import NORMAL_CLASS                             # noqa: E402
from features.store import open_store                                 # noqa: E402
from samples.hard import REGIMES, SIZES, make_hard_store               # noqa: E402

# The benchmark-sized model, the same for every AnomalyCLIP variant.
SHAPE = dict(num_segments=16, seg_length=8, width=64, heads=8, device="cpu")
# The method as stated, with what a custom dataset got before the size rule.
FAITHFUL = dict(select_by="selector", direction_init="text", lambda_rank=0.0,
                concat_selector=False, selector_logit=False)
PAPER_NUMBERS = dict(FAITHFUL, lr=1e-5, warmup_epochs=5, epochs=50, val_every=1)
BEFORE = dict(direction_init="text+data", concat_selector=False, selector_logit=False)
VARIANTS = ("custom-before", "custom")
OVERRIDES = {"paper-numbers": PAPER_NUMBERS, "faithful": FAITHFUL, "custom-before": BEFORE,
             "+residual": dict(BEFORE, direction_init="residual"),
             "+concat": dict(BEFORE, direction_init="residual", concat_selector=True),
             "custom": {},
             "all-options": dict(select_by="blend", lambda_rank=1.0)}


def regime_store(regime: str, size: str, model: str, oracle: bool = False) -> Path:
    """The benchmark store of a regime and size, written once under bench/out (``oracle``:
    the same store with the training videos' intervals)."""
    path = OUT / "weak_prior" / f"hard_{regime}_{size}{'_oracle' if oracle else ''}.h5"
    if not path.exists():
        make_hard_store(path, model, **REGIMES[regime], **SIZES[size], train_intervals=oracle,
                        dataset="hard-" + regime, seed=1)
    return path


def test_split(store_path):
    """(test rows of store.metadata(), {video_id: frame index}, class names)."""
    with open_store(store_path) as store:
        meta = store.metadata()
        test = meta[meta["split"] == "test"].reset_index(drop=True)
        frames = {v: store.frame_index(v) for v in test["video_id"]}
        return test, frames, store.class_names


def row_labels(store_path) -> dict[str, np.ndarray]:
    """{test video_id: 0/1 per stored row}."""
    from train.validate import row_labels as labels

    test, frames, _ = test_split(store_path)
    return {r.video_id: labels(r, frames[r.video_id], False, NORMAL_CLASS)
            for r in test.itertuples(index=False)}


def frame_auc(labels: dict, scores: dict) -> float:
    from sklearn.metrics import roc_auc_score

    ids = list(labels)
    return float(roc_auc_score(np.concatenate([labels[v] for v in ids]),
                               np.concatenate([scores[v] for v in ids])))


def store_rows(store_path) -> tuple:
    """(metadata, {video_id: (T, D) float32 rows}) of every video of a store."""
    with open_store(store_path) as store:
        meta = store.metadata()
        return meta, {v: store.rows(v).astype(np.float32) for v in meta["video_id"]}


def training_free(store_path, train_ids) -> dict[str, list]:
    """The no-training rows: both novelty scores (frame AUC), the prototype (top-1)."""
    from train.baselines import baseline_metrics, fit_baselines

    meta, rows = store_rows(store_path)
    train = meta[meta["video_id"].isin(train_ids)]
    test, _, class_names = test_split(store_path)
    t = time.time()
    model = fit_baselines(rows, dict(zip(train["video_id"], train["class_name"])),
                          [c for c in class_names if c != NORMAL_CLASS], NORMAL_CLASS)
    m = baseline_metrics(model, rows, test, row_labels(store_path), NORMAL_CLASS)
    seconds = time.time() - t
    return {"novelty (centroid)": [{"auc": m["novelty_auc"], "seconds": seconds}],
            "novelty (residual)": [{"auc": m["residual_auc"], "seconds": seconds}],
            "prototype": [{"video_top1_accuracy": m["prototype_top1"], "seconds": seconds}]}


def table_metrics(test, labels: dict, p_anomaly: dict, class_probs: dict,
                  class_names) -> dict:
    """frame auc, mauc and video top-1 of per-row scores (the definitions of validation)."""
    from features.metrics import (class_table, class_targets, mean_over_present, roc_auc,
                                  top1_accuracy, video_class_scores)

    ids = list(test["video_id"])
    y = np.concatenate([labels[v] for v in ids])
    vids = np.concatenate([np.full(len(labels[v]), v, dtype=object) for v in ids])
    classes_of = dict(zip(test["video_id"], ([c] for c in test["class_name"])))
    probs = np.concatenate([class_probs[v] for v in ids])
    table = class_table(class_targets(y, vids, classes_of, class_names, NORMAL_CLASS), probs,
                        class_names, NORMAL_CLASS, ("auc",))
    abnormal = test[test["class_name"] != NORMAL_CLASS]
    predicted = [video_class_scores(class_probs[v], class_names, NORMAL_CLASS).idxmax()
                 for v in abnormal["video_id"]]
    return {"auc": roc_auc(y, np.concatenate([p_anomaly[v] for v in ids])),
            "mauc": mean_over_present(table, "auc"),
            "video_top1_accuracy": top1_accuracy([{c} for c in abnormal["class_name"]],
                                                 predicted)}


def oracle(oracle_store, store_path, train_ids, seed: int = 0,
           max_normal_rows: int = 30_000) -> dict:
    """The ceiling: a multinomial logistic regression on frame labels (Normal or the
    video's class inside its intervals) of the training videos, standardised features."""
    from sklearn.linear_model import LogisticRegression

    from train.validate import row_labels as labels_of

    t = time.time()
    meta, rows = store_rows(oracle_store)
    train = meta[meta["video_id"].isin(train_ids)]
    x, y = [], []
    for r in train.itertuples(index=False):
        inside = labels_of(r, np.arange(len(rows[r.video_id])), False, NORMAL_CLASS)
        x.append(rows[r.video_id])
        y.append(np.where(inside == 1, r.class_name, NORMAL_CLASS))
    x, y = np.concatenate(x), np.concatenate(y)
    rng = np.random.default_rng(seed)
    normal = np.flatnonzero(y == NORMAL_CLASS)
    keep = np.concatenate([np.flatnonzero(y != NORMAL_CLASS),
                           rng.choice(normal, min(len(normal), max_normal_rows), False)])
    mean, scale = x[keep].mean(0), x[keep].std(0) + 1e-6
    clf = LogisticRegression(max_iter=300).fit((x[keep] - mean) / scale, y[keep])
    test, _, class_names = test_split(store_path)
    _, test_rows = store_rows(store_path)
    order = [list(clf.classes_).index(c) for c in class_names]
    probs = {v: clf.predict_proba((test_rows[v] - mean) / scale)[:, order]
             for v in test["video_id"]}
    normal_at = class_names.index(NORMAL_CLASS)
    p_anomaly = {v: 1 - p[:, normal_at] for v, p in probs.items()}
    out = table_metrics(test, row_labels(store_path), p_anomaly, probs, class_names)
    return {**out, "seconds": time.time() - t}


def anomaly_clip_metrics(run_dir, store_path) -> dict:
    """Test-split auc, mauc, video_top1_accuracy of a run's kept checkpoint."""
    from train.rundir import load_run
    from train.validate import validation_metrics
    from train.windows import MemoryRows

    model, _ = load_run(run_dir)
    test, frames, class_names = test_split(store_path)
    with open_store(store_path) as store:
        source = MemoryRows(store, list(test["video_id"]))
    m = validation_metrics(model, source, test, frames, class_names, NORMAL_CLASS)
    return {k: m[k] for k in ("auc", "mauc", "video_top1_accuracy")}


def variant_config(variant: str, store_path):
    """The TrainConfig of a variant on a store: the custom preset for the store (what
    ``pipeline train`` picks for a dataset that is not a paper preset), overridden."""
    from train.stage import resolve_config

    return resolve_config(store_path, settings={**SHAPE, **OVERRIDES[variant]})


def run_anomaly_clip(stores: dict, variants, seeds, runs_dir: Path, workers):
    """Every (regime, variant, seed) run on one Dask cluster -> {(regime, variant): [metrics]}."""
    from train.sweep import plan_runs, run_many

    jobs = []
    for regime, store in stores.items():
        for variant in variants:
            config = variant_config(variant, store)
            for spec in plan_runs(config, store, runs_dir / regime / variant, seeds):
                jobs.append((regime, variant, store, spec))
    results = run_many([store for _, _, store, _ in jobs], [spec for *_, spec in jobs],
                       n_workers=workers)
    out: dict = {}
    for (regime, variant, store, spec), res in zip(jobs, results):
        if res.get("error"):
            print(f"  {regime} {variant} seed {spec.config.seed} failed: {res['error']}")
            continue
        metrics = anomaly_clip_metrics(spec.run_dir, store)
        metrics["epochs"], metrics["lr"] = spec.config.epochs, spec.config.lr
        metrics["seconds"] = res.get("seconds")
        out.setdefault((regime, variant), []).append(metrics)
    return out


def run_baselines(store, oracle_store, seeds, train_ids) -> dict[str, list]:
    """{method: [metrics]} of the baselines on a store: training-free, MIL, oracle."""
    labels = row_labels(store)
    out = training_free(store, train_ids)
    test, _, _ = test_split(store)
    out["MIL ranking"] = []
    for seed in seeds:
        t = time.time()
        model = train_mil(store, seed=seed, video_ids=train_ids)
        out["MIL ranking"].append({"auc": frame_auc(labels, score_mil(
            model, store, list(test["video_id"]))), "seconds": time.time() - t})
    out["oracle (frame labels)"] = [oracle(oracle_store, store, train_ids)]
    return out


def training_ids(store) -> list[str]:
    """The videos AnomalyCLIP trains on (the store's train split minus the carved val)."""
    from train.config import TrainConfig
    from train.splits import training_split

    config = TrainConfig()
    with open_store(store) as s:
        return list(training_split(s, config.val_fraction, config.val_seed).train["video_id"])


def cell(values: list, key: str) -> str:
    vals = [v[key] for v in values if v.get(key) is not None and v[key] == v[key]]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{np.mean(vals):.3f} ({min(vals):.2f}-{max(vals):.2f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 seed, half-size stores")
    ap.add_argument("--seeds", default=None, help="comma-separated [default: 0,1,2; quick: 0]")
    ap.add_argument("--regimes", default=",".join(REGIMES))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--workers", type=int, default=None, help="Dask workers [one per core]")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--baselines-only", action="store_true", help="no AnomalyCLIP runs")
    args = ap.parse_args()
    size = "quick" if args.quick else "full"
    seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1,2")).split(",")]
    variants = [] if args.baselines_only else [v for v in args.variants.split(",") if v]
    model = model_path(args.model)
    t0 = time.time()
    stores = {r: regime_store(r, size, model) for r in args.regimes.split(",")}
    runs_dir = OUT / "weak_prior" / f"runs_{size}"
    results = run_anomaly_clip(stores, variants, seeds, runs_dir, args.workers) \
        if variants else {}
    rows = []
    for regime, store in stores.items():
        baselines = run_baselines(store, regime_store(regime, size, model, oracle=True), seeds,
                                  training_ids(store))
        table = list(baselines.items()) + [(v, results.get((regime, v), [])) for v in variants]
        print(f"\n{regime} ({size} store, seeds {','.join(map(str, seeds))}; "
              "test split, mean (min-max) over seeds)")
        print(f"  {'method':<20} {'frame AUC':<22} {'mAUC':<22} {'top-1 class':<22} "
              "lr / epochs")
        for name, values in table:
            extra = ""
            if values and "lr" in values[0]:
                extra = f"{values[0]['lr']:g} / {values[0]['epochs']}"
            print(f"  {name:<20} {cell(values, 'auc'):<22} {cell(values, 'mauc'):<22} "
                  f"{cell(values, 'video_top1_accuracy'):<22} {extra}")
            rows.append({"regime": regime, "method": name, "values": values})
    print(f"\n{time.time() - t0:.0f} s in all")
    out = OUT / "weak_prior" / f"results_{size}.json"
    out.write_text(json.dumps(rows, indent=1, default=float) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
