"""A scoring folder made up without a model: what ``pipeline score`` writes, for tests and
``bench/report.py`` (a UCF-Crime-sized split renders the report at full scale).

    make_scoring_folder(out, n_videos=290, frames=1_100_000, classes=UCF_CLASSES)

Each video gets a smooth random p(anomaly) curve (a few frames of noise around a low level),
abnormal videos one or two annotated intervals where the curve rises, and class
probabilities that give most of the anomaly mass to the video's own class (some videos to
another: confusions). Files: frame_scores.parquet, videos.csv, metrics.json (the metric
suite of evaluate/summary.py), per_class.csv.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

UCF_CLASSES = ["Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting",
               "Normal", "RoadAccidents", "Robbery", "Shooting", "Shoplifting", "Stealing",
               "Vandalism"]


def _smooth(rng, n: int, width: int) -> np.ndarray:
    x = rng.normal(0, 1, n + width)
    kernel = np.ones(width) / width
    return np.convolve(x, kernel, mode="valid")[:n] * np.sqrt(width)


def _anomaly_curve(rng, n: int, abnormal: bool) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(p_anomaly (n,), the true intervals): a low smooth curve, raised inside one or two
    intervals of an abnormal video, or over 20 frames of a normal one (a false alarm)."""
    level = rng.uniform(0.05, 0.25)
    p = level + 0.06 * _smooth(rng, n, 15)
    intervals = []
    if abnormal:
        for _ in range(int(rng.integers(1, 3))):
            a = int(rng.integers(0, max(1, n - n // 4)))
            b = min(n - 1, a + int(rng.integers(n // 10 + 1, n // 4 + 2)))
            intervals.append((a, b))
            p[a:b + 1] += rng.uniform(0.2, 0.7)
    elif rng.random() < 0.3:                    # a normal video with a false alarm
        a = int(rng.integers(0, n - 20))
        p[a:a + 20] += 0.6
    return np.clip(p, 0.001, 0.999).astype(np.float32), intervals


def make_scoring_folder(out, n_videos: int = 24, frames: int = 24 * 300,
                        classes: list[str] | None = None, fps: float = 30.0, seed: int = 0,
                        normal_class: str = "Normal", metrics: bool = True) -> Path:
    """Write a scoring folder of ``n_videos`` (half normal) with ``frames`` frames in all."""
    from evaluate import tables
    from evaluate.summary import summarize

    classes = list(classes or ["Arson", "Fighting", "Normal", "Road_Accidents"])
    anomaly = [c for c in classes if c != normal_class]
    rng = np.random.default_rng(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lengths = rng.lognormal(0, 0.6, n_videos)
    lengths = np.maximum(64, np.round(lengths / lengths.sum() * frames)).astype(int)
    parts, rows, vids = [], [], []
    for i, n in enumerate(lengths):
        abnormal = i % 2 == 1
        truth = anomaly[(i // 2) % len(anomaly)] if abnormal else normal_class
        vid = f"{'test_' + truth}_{i:03d}"
        p, intervals = _anomaly_curve(rng, n, abnormal)
        own = truth if abnormal and rng.random() > 0.2 else anomaly[int(rng.integers(len(anomaly)))]
        share = rng.dirichlet(np.ones(len(anomaly)) * 0.5, size=n)
        share[:, anomaly.index(own)] += 2.0
        share /= share.sum(axis=1, keepdims=True)
        probs = np.zeros((n, len(classes)), np.float32)
        for k, name in enumerate(anomaly):
            probs[:, classes.index(name)] = p * share[:, k]
        probs[:, classes.index(normal_class)] = 1 - p
        labels = np.zeros(n, np.int8)
        for a, b in intervals:
            labels[a:b + 1] = 1
        parts.append(tables.frame_table(vid, p, probs, classes, np.arange(n) / fps, labels,
                                        truth))
        pred = own if p.max() >= 0.5 else normal_class
        rows.append({"video_id": vid, "split": "test", "class_name": truth, "n_frames": n,
                     "fps": fps, "max_p_anomaly": float(p.max()), "mean_p_anomaly": float(p.mean()),
                     "pred_class": pred,
                     "truth_intervals": ";".join(f"{a}-{b}" for a, b in intervals),
                     "found_intervals": ""})
        vids.append({"video_id": vid, "label": int(abnormal), "class_names_all": [truth]})
    frame_table = pd.concat(parts, ignore_index=True)
    tables.write_table(frame_table, out)
    pd.DataFrame(rows).to_csv(out / tables.VIDEOS, index=False)
    body = {"split": "test", "features": None, "run": None, "threshold": 0.5,
            "metrics": None, "per_class": None,
            "notes": ["a made-up scoring (samples/scores.py): no model, no feature file"]}
    if metrics:
        result, per_class = summarize(frame_table, pd.DataFrame(vids), classes, normal_class,
                                      0.5)
        per_class.to_csv(out / tables.PER_CLASS, index=False)
        body.update(metrics=result, per_class=per_class.to_dict("records"))
    body["files"] = sorted(p.name for p in out.iterdir() if p.is_file()) + [tables.METRICS]
    tables.write_metrics(out / tables.METRICS, body)
    return out
