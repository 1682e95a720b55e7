"""Anomalous intervals found in a video's frame scores: runs of p_anomaly >= threshold.

The runs are the alarm rule's (features/alarms.py): runs closer than ``min_gap_s`` are merged
(a score dipping for a few frames does not split an event), runs shorter than ``min_len_s``
are dropped. Each interval gets the anomaly class with the most probability mass inside it
(sum of P(c) over its frames) and its peak score.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from features.alarms import (DEFAULT_MERGE_GAP_S, DEFAULT_MIN_DURATION_S, DEFAULT_THRESHOLD,
                             AlarmRule, alarm_spans)
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


def find_intervals(p_anomaly: np.ndarray, class_probs: np.ndarray, class_names: list[str],
                   fps: float, threshold: float = DEFAULT_THRESHOLD,
                   min_gap_s: float = DEFAULT_MERGE_GAP_S,
                   min_len_s: float = DEFAULT_MIN_DURATION_S,
                   normal_class: str = NORMAL_CLASS) -> list[Interval]:
    """Anomalous intervals of one video. p_anomaly (F,), class_probs (F, C) on native frames."""
    fps = float(fps) if fps and fps > 0 else 1.0
    merged = alarm_spans(p_anomaly, fps, AlarmRule(threshold, min_gap_s, min_len_s))
    anomaly = [k for k, name in enumerate(class_names) if name != normal_class]
    found = []
    for start, end in merged:
        mass = class_probs[start:end + 1][:, anomaly].sum(axis=0)            # (C-1,)
        found.append(Interval(start, end, start / fps, (end + 1) / fps,
                              class_names[anomaly[int(np.argmax(mass))]],
                              float(np.max(p_anomaly[start:end + 1]))))
    return found
