"""Anomalous intervals found in a video's frame scores: runs of p_anomaly >= threshold.

Runs closer than ``min_gap_s`` are merged (a score dipping for a few frames does not split
an event), runs shorter than ``min_len_s`` are dropped. Each interval gets the anomaly class
with the most probability mass inside it (sum of P(c) over its frames) and its peak score.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from features.metrics import THRESHOLD
from features.schema import NORMAL_CLASS


@dataclass
class Interval:
    start_frame: int        # native frames, inclusive
    end_frame: int
    start_s: float
    end_s: float            # end of the last frame: (end_frame + 1) / fps
    class_name: str
    peak: float             # highest p_anomaly inside

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        return (f"{self.start_s:8.2f} - {self.end_s:8.2f} s  (frames {self.start_frame}-"
                f"{self.end_frame})  {self.class_name:<16} peak {self.peak:.3f}")


def runs_above(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Inclusive (start, end) index pairs of the maximal runs with score >= threshold."""
    above = np.r_[False, np.asarray(scores) >= threshold, False].astype(np.int8)
    edges = np.diff(above)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def find_intervals(p_anomaly: np.ndarray, class_probs: np.ndarray, class_names: list[str],
                   fps: float, threshold: float = THRESHOLD, min_gap_s: float = 0.5,
                   min_len_s: float = 0.0, normal_class: str = NORMAL_CLASS) -> list[Interval]:
    """Anomalous intervals of one video. p_anomaly (F,), class_probs (F, C) on native frames."""
    fps = float(fps) if fps and fps > 0 else 1.0
    runs = runs_above(p_anomaly, threshold)
    merged: list[list[int]] = []
    for start, end in runs:
        if merged and (start - merged[-1][1] - 1) / fps < min_gap_s:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    anomaly = [k for k, name in enumerate(class_names) if name != normal_class]
    found = []
    for start, end in merged:
        if (end - start + 1) / fps < min_len_s:
            continue
        mass = class_probs[start:end + 1][:, anomaly].sum(axis=0)            # (C-1,)
        found.append(Interval(start, end, start / fps, (end + 1) / fps,
                              class_names[anomaly[int(np.argmax(mass))]],
                              float(np.max(p_anomaly[start:end + 1]))))
    return found
