"""Frame metrics at UCF-Crime scale: scikit-learn's (features/metrics.py) against the numpy
implementation scoring used before (bench/baseline_metrics.py), side by side in one run.

    python bench/metrics.py [--frames 1100000] [--classes 14] [--repeat 3]

One "suite" is what scoring computes per split on the ranking side: frame AUC, AP and
AP_trapezoid on p_anomaly, then the same three per anomaly class (one-vs-rest). Scores are
float32 probabilities (as the model writes them, so ties occur), ~8% anomalous frames.
Prints the best of ``--repeat`` wall times of each and their ratio, and the largest
difference between the two implementations' numbers.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import baseline_metrics as old  # noqa: E402
from features import metrics as new  # noqa: E402


def data(n_frames: int, n_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.random(n_frames) < 0.08
    cls = rng.integers(0, n_classes, n_frames)
    s = np.clip(0.2 + 0.4 * y + rng.normal(0, 0.2, n_frames), 0, 1).astype(np.float32)
    probs = rng.dirichlet(np.ones(n_classes), n_frames).astype(np.float32)
    return y, s, [(y & (cls == k), probs[:, k]) for k in range(n_classes)]


def suite(m, y, s, per_class) -> list[float]:
    out = [m.roc_auc(y, s), m.average_precision(y, s), m.ap_trapezoid(y, s)]
    for yk, pk in per_class:
        out += [m.roc_auc(yk, pk), m.average_precision(yk, pk), m.ap_trapezoid(yk, pk)]
    return out


def best_time(fn, repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1_100_000)
    ap.add_argument("--classes", type=int, default=14)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    y, s, per_class = data(args.frames, args.classes)
    t_old, r_old = best_time(lambda: suite(old, y, s, per_class), args.repeat)
    t_new, r_new = best_time(lambda: suite(new, y, s, per_class), args.repeat)
    diff = float(np.nanmax(np.abs(np.array(r_old) - np.array(r_new))))
    print(f"{args.frames} frames, {args.classes} classes, {len(r_new)} metrics per suite, "
          f"best of {args.repeat}")
    print(f"  numpy (before)         {t_old:8.2f} s")
    print(f"  scikit-learn (now)     {t_new:8.2f} s")
    print(f"  ratio sklearn / numpy  {t_new / t_old:8.2f}")
    print(f"  largest difference of the numbers: {diff:.2e}")


if __name__ == "__main__":
    main()
