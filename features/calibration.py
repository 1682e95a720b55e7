"""Calibrated thresholds: where the alarm rule meets a false-alarm target on normal video.

A pure function of the frame scores of normal videos and their frame rates. For each target
(spelled as ``--alarms`` takes it, :func:`features.alarms.parse_target`):

- ``N/h``: the lowest threshold found at which the alarms of the rule (features/alarms.py,
  with the calibration's merge gap and minimum duration) number at most N per hour of the
  normal video measured;
- ``far=F``: the lowest threshold at which at most a share F of the normal frames score at
  or above it.

The threshold is the lowest at which the target is met there AND at every higher threshold
(scanning down from the top, it stops at the first threshold that fails): the alarm count
does not always fall as the threshold rises (a higher threshold can split one alarm into
two, and below a video's lowest score the whole video is one alarm), and an operator who
raises a calibrated threshold must not get more alarms. Every distinct normal score is a
candidate, all counted at once: frame i opens an alarm at threshold t exactly when its
score is >= t and the K frames before it (K: the merge gap in frames) are all below t, so
the count at every t comes from two sorted arrays (:func:`alarm_openings`). With a minimum
duration the count is taken before short alarms are dropped, an upper bound, so the
threshold is on the safe side. The threshold written is the midpoint between the highest
normal score left below it and the lowest one at or above it (a re-run whose scores differ
in the last bits gives the same alarms); the counts stored beside it are measured there
with the rule itself (features/alarms.py).

Resolution: over an exposure E (hours of normal video, or normal frames for ``far``) a
rate r predicts r * E events. Seeing none in E is consistent, at 95%, with a true rate up
to -ln(0.05) / E ~= 3 / E (Poisson), so a target r is *resolved* only when E >= 3 / r:
1 alarm per hour rests on at least 3 hours of normal video, 0.1/h on 30. A target that is
not resolved still gets a threshold, with ``resolved: false`` and a ``warning``.

The result is ``calibration.json`` of a run folder (train/rundir.py names it)::

    {"split": "val", "normal_videos": n, "normal_hours": h, "normal_frames": f,
     "merge_gap_s": g, "min_duration_s": d, "source": ..., "created_utc": ...,
     "targets": [{"target": "1/h", "threshold": t, "alarms": a, "alarms_per_hour": r,
                  "far": x, "needs_hours": 3.0, "resolved": true, "warning": null}, ...]}
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .alarms import (DEFAULT_MERGE_GAP_S, DEFAULT_MIN_DURATION_S, AlarmRule, Target, _fps,
                     alarm_spans, parse_target)
from .errors import UserError
from .schema import utc_now

DEFAULT_TARGETS = ("10/h", "1/h", "0.1/h", "far=0.01", "far=0.001")
RESOLVE_EVENTS = -math.log(0.05)       # ~3.0: zero events in E bound the rate by this / E


@dataclass(frozen=True)
class NormalCurve:
    """One normal video's p(anomaly) on its native frames."""
    video_id: str
    p_anomaly: np.ndarray        # (F,)
    fps: float

    @property
    def hours(self) -> float:
        return len(self.p_anomaly) / _fps(self.fps) / 3600.0


def alarm_count(curves: Sequence[NormalCurve], rule: AlarmRule) -> int:
    """How many alarms the rule raises on the curves (alarms never cross videos)."""
    return sum(len(alarm_spans(c.p_anomaly, c.fps, rule)) for c in curves)


def _between(low: float | None, high: float | None) -> float:
    """The threshold written between the highest score left out (``low``) and the lowest
    one kept (``high``): their midpoint; above every score when ``high`` is None."""
    if high is None:
        return (low + 1.0) / 2 if low < 1.0 else float(np.nextafter(low, np.inf))
    return high if low is None else (low + high) / 2


def _gap_frames(fps: float, merge_gap_s: float) -> int:
    """K: the fewest frames below the threshold that keep two runs apart (>= 1), with the
    rule's own arithmetic ``gap / fps >= merge_gap_s``."""
    k = max(1, math.ceil(merge_gap_s * fps))
    while k > 1 and (k - 1) / fps >= merge_gap_s:
        k -= 1
    while k / fps < merge_gap_s:
        k += 1
    return k


def alarm_openings(curve: NormalCurve, merge_gap_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per frame i that can open an alarm: frame i opens one exactly at the
    thresholds t with low_i < t <= high_i, where high_i is its score and low_i the highest
    score of the K frames before it (-inf at the start). So the number of alarms at t,
    before short ones are dropped, is #{low < t} - #{high < t}."""
    s = np.asarray(curve.p_anomaly, np.float64)
    k = _gap_frames(_fps(curve.fps), merge_gap_s)
    padded = np.r_[np.full(k, -np.inf), s[:-1]]                    # frame i-k .. i-1
    low = np.lib.stride_tricks.sliding_window_view(padded, k).max(axis=1)    # (F,)
    keep = low < s
    return low[keep], s[keep]


def _counts_at(target: Target, curves, rule: AlarmRule, scores: np.ndarray,
               u: np.ndarray) -> np.ndarray:
    """(U,) at each threshold u: frames at or above it (far), or alarms (per_hour)."""
    if target.kind == "far":
        return len(scores) - np.searchsorted(scores, u)
    pairs = [alarm_openings(c, rule.merge_gap_s) for c in curves]
    low = np.sort(np.concatenate([p[0] for p in pairs]))
    high = np.sort(np.concatenate([p[1] for p in pairs]))
    return np.searchsorted(low, u) - np.searchsorted(high, u)


def _entry(target: Target, threshold: float, curves, rule: AlarmRule, scores: np.ndarray,
           hours: float) -> dict:
    """One target's line of calibration.json: its threshold and what it gives there."""
    alarms = alarm_count(curves, AlarmRule(threshold, rule.merge_gap_s, rule.min_duration_s))
    entry = {"target": target.spell(), "threshold": float(threshold), "alarms": alarms,
             "alarms_per_hour": alarms / hours,
             "far": float(len(scores) - np.searchsorted(scores, threshold)) / len(scores)}
    if target.kind == "threshold":
        return {**entry, "resolved": True, "warning": None}
    need = RESOLVE_EVENTS / target.value
    if target.kind == "per_hour":
        have, key, unit = hours, "needs_hours", "hours of normal video"
    else:
        have, key, unit = float(len(scores)), "needs_frames", "normal frames"
    entry[key] = need
    entry["resolved"] = bool(have >= need)
    entry["warning"] = None if have >= need else (
        f"{target.spell()} rests on {have:.3g} {unit}; resolving it needs at least "
        f"{need:.3g} (no false alarm seen in less does not show a rate as low as that)")
    return entry


def _sorted_scores(curves: Sequence[NormalCurve]) -> np.ndarray:
    return np.sort(np.concatenate([np.asarray(c.p_anomaly, np.float64) for c in curves]))


def threshold_for(target: Target, curves: Sequence[NormalCurve], rule: AlarmRule,
                  scores: np.ndarray | None = None) -> float:
    """The threshold at which ``curves`` meet ``target`` (per_hour or far) under ``rule``'s
    merge gap: the lowest at which it and every threshold above meet it. ``scores``: all
    their scores sorted, if known."""
    if target.kind == "threshold":
        return float(target.value)
    scores = _sorted_scores(curves) if scores is None else scores
    u = scores[np.r_[True, scores[1:] != scores[:-1]]]               # distinct, ascending
    allowed = target.value * (len(scores) if target.kind == "far"
                              else sum(c.hours for c in curves))
    fails = np.flatnonzero(_counts_at(target, curves, rule, scores, u) > allowed + 1e-9)
    j = int(fails[-1]) + 1 if len(fails) else 0
    return _between(float(u[j - 1]) if j else None, float(u[j]) if j < len(u) else None)


def calibrate(curves: Iterable[NormalCurve], targets: Sequence[str] = DEFAULT_TARGETS,
              merge_gap_s: float = DEFAULT_MERGE_GAP_S,
              min_duration_s: float = DEFAULT_MIN_DURATION_S, split: str | None = None,
              **about) -> dict:
    """calibration.json's body (module docstring) from the normal videos ``curves``.
    ``about``: more top-level keys to record (the feature file, the videos folder)."""
    curves = [c for c in curves if len(c.p_anomaly)]
    parsed = [parse_target(t) for t in targets]
    rule = AlarmRule(merge_gap_s=float(merge_gap_s), min_duration_s=float(min_duration_s))
    hours = sum(c.hours for c in curves)
    body = {"split": split, "normal_videos": len(curves), "normal_hours": hours,
            "normal_frames": int(sum(len(c.p_anomaly) for c in curves)),
            "merge_gap_s": rule.merge_gap_s, "min_duration_s": rule.min_duration_s,
            **about, "created_utc": utc_now(), "targets": []}
    if not curves:
        body["targets"] = [{"target": t.spell(), "threshold": None, "resolved": False,
                            "warning": "no normal videos to calibrate on"} for t in parsed]
        return body
    scores = _sorted_scores(curves)
    for target in parsed:
        threshold = threshold_for(target, curves, rule, scores)
        body["targets"].append(_entry(target, threshold, curves, rule, scores, hours))
    return body


def rule_of(calibration: dict, threshold: float) -> AlarmRule:
    """The alarm rule at ``threshold`` with the calibration's merge gap and duration."""
    return AlarmRule(float(threshold),
                     float(calibration.get("merge_gap_s", DEFAULT_MERGE_GAP_S)),
                     float(calibration.get("min_duration_s", DEFAULT_MIN_DURATION_S)))


def find_target(calibration: dict, target: Target, where: str) -> dict:
    """The entry of ``calibration`` (read from ``where``) for ``target``; a UserError when
    it has none, rests on no normal video, or cannot resolve it."""
    entries = {}
    for entry in calibration.get("targets") or []:
        try:
            entries[parse_target(entry.get("target"))] = entry
        except (UserError, AttributeError):
            continue
    entry = entries.get(target)
    spelled = target.spell()
    if entry is None:
        have = ", ".join(e.spell() for e in entries) or "none"
        raise UserError(f"--alarms {spelled}: {where} has no threshold for it (targets: "
                        f"{have}); pass one of those, or add it with `pipeline calibrate "
                        f"--targets {spelled}`")
    if entry.get("threshold") is None or not calibration.get("normal_videos"):
        raise UserError(f"--alarms {spelled}: {where} rests on no normal videos; calibrate "
                        "the run on normal footage first (`pipeline calibrate --run RUN "
                        "--features FILE --videos DIR`)")
    if not entry.get("resolved", False):
        have = (f"{calibration.get('normal_hours', 0):.3g} h" if target.kind == "per_hour"
                else f"{calibration.get('normal_frames', 0):,} frames")
        need = (f"{entry.get('needs_hours', 0):.3g} h" if target.kind == "per_hour"
                else f"{entry.get('needs_frames', 0):,.0f} frames")
        raise UserError(f"--alarms {spelled}: finer than {where} can tell: it rests on {have} "
                        f"of normal video, {spelled} needs at least {need}; recalibrate on "
                        "more normal footage (`pipeline calibrate --run RUN --features FILE "
                        "--videos DIR`), or pass a coarser target or a threshold")
    return entry
