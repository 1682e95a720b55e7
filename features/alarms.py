"""The alarm rule, once: when a curve of frame scores becomes a decision.

An alarm is a maximal run of frames with ``p_anomaly >= threshold``; runs separated by fewer
than ``merge_gap_s`` seconds of frames below it are merged into one (a score dipping for a
few frames does not split an event), then merged runs shorter than ``min_duration_s`` are
dropped. Frames are native frames at ``fps``; an alarm spans ``[start_frame, end_frame]``
inclusive, in seconds ``[start_frame / fps, (end_frame + 1) / fps)``.

Everything that turns scores into alarms uses this module: the intervals that scoring
reports (evaluate/), the calibration of a run's thresholds, and live watching, which feeds
frames one batch at a time to :class:`AlarmTracker` and gets exactly the alarms that
:func:`find_alarms` finds on the whole curve (tests/test_alarms.py checks it).

``--alarms`` targets are spelled as :func:`parse_target` reads them: ``1/h`` (alarms per
hour of normal video), ``far=0.01`` (the share of normal frames at or above the
threshold), or a plain threshold such as ``0.7``.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import UserError
from .metrics import THRESHOLD as DEFAULT_THRESHOLD    # the threshold when no calibration says otherwise
DEFAULT_MERGE_GAP_S = 0.5
DEFAULT_MIN_DURATION_S = 0.0


@dataclass(frozen=True)
class AlarmRule:
    threshold: float = DEFAULT_THRESHOLD
    merge_gap_s: float = DEFAULT_MERGE_GAP_S
    min_duration_s: float = DEFAULT_MIN_DURATION_S

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Alarm:
    start_frame: int         # native frames, inclusive
    end_frame: int
    peak: float              # highest p_anomaly inside
    mean: float              # mean p_anomaly over [start_frame, end_frame]

    def start_s(self, fps: float) -> float:
        return self.start_frame / _fps(fps)

    def end_s(self, fps: float) -> float:
        """End of the last frame: (end_frame + 1) / fps."""
        return (self.end_frame + 1) / _fps(fps)

    def duration_s(self, fps: float) -> float:
        return (self.end_frame - self.start_frame + 1) / _fps(fps)


def _fps(fps) -> float:
    return float(fps) if fps and fps > 0 else 1.0


def _runs(scores: np.ndarray, threshold: float) -> np.ndarray:
    """(R, 2) inclusive start and end indices of the maximal runs with score >= threshold."""
    above = np.r_[False, np.asarray(scores, np.float64) >= threshold, False].astype(np.int8)
    edges = np.diff(above)
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1], axis=1)


def runs_above(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Inclusive (start, end) index pairs of the maximal runs with score >= threshold."""
    return [tuple(r) for r in _runs(scores, threshold).tolist()]


def alarm_spans(scores: np.ndarray, fps: float, rule: AlarmRule) -> list[tuple[int, int]]:
    """Inclusive (start, end) frame spans of the alarms of one video's curve."""
    fps = _fps(fps)
    runs = _runs(scores, rule.threshold)                               # (R, 2)
    if not len(runs):
        return []
    # a run opens a new alarm unless the gap since the previous run is under merge_gap_s
    opens = np.r_[True, (runs[1:, 0] - runs[:-1, 1] - 1) / fps >= rule.merge_gap_s]
    starts, ends = runs[opens, 0], runs[np.r_[opens[1:], True], 1]
    keep = (ends - starts + 1) / fps >= rule.min_duration_s
    return list(zip(starts[keep].tolist(), ends[keep].tolist()))


def find_alarms(p_anomaly: np.ndarray, fps: float, rule: AlarmRule) -> list[Alarm]:
    """The alarms of one video: p_anomaly (F,) on native frames at ``fps``."""
    s = np.asarray(p_anomaly, dtype=np.float64)
    return [Alarm(a, b, float(s[a:b + 1].max()), float(s[a:b + 1].mean()))
            for a, b in alarm_spans(s, fps, rule)]


@dataclass
class AlarmEvent:
    kind: str                # "start" | "end"
    frame: int               # start: the alarm's first frame; end: its last frame
    alarm: Alarm | None = None   # on "end": the whole alarm


@dataclass
class AlarmTracker:
    """The alarm rule fed a few frames at a time (a live stream), causally.

    An alarm starts (event ``start``) at the frame where its merged run first lasts
    ``min_duration_s``, and ends (event ``end``) once ``merge_gap_s`` of frames below the
    threshold have followed it, or at :meth:`close`. Over a whole curve the ended alarms
    are exactly :func:`find_alarms`'s.
    """
    rule: AlarmRule
    fps: float
    frames_seen: int = 0
    _start: int | None = field(default=None, repr=False)     # first frame of the open run
    _last: int = field(default=-1, repr=False)               # its last frame >= threshold
    _peak: float = field(default=-math.inf, repr=False)
    _sum: float = field(default=0.0, repr=False)             # over [_start, _last]
    _pending: float = field(default=0.0, repr=False)         # below-threshold frames since _last
    _started: bool = field(default=False, repr=False)

    @property
    def open(self) -> bool:
        """An alarm has started and not ended."""
        return self._started

    def push(self, scores) -> list[AlarmEvent]:
        """Feed the next frames' scores; the events they cause, in order."""
        events: list[AlarmEvent] = []
        fps = _fps(self.fps)
        for value in np.asarray(scores, dtype=np.float64).ravel().tolist():
            t = self.frames_seen
            self.frames_seen += 1
            if value >= self.rule.threshold:
                if self._start is None:
                    self._start, self._peak, self._sum, self._pending = t, value, 0.0, 0.0
                self._sum += self._pending + value
                self._pending, self._last = 0.0, t
                self._peak = max(self._peak, value)
                if not self._started and (t - self._start + 1) / fps >= self.rule.min_duration_s:
                    self._started = True
                    events.append(AlarmEvent("start", self._start))
            elif self._start is not None:
                self._pending += value
                if (t - self._last) / fps >= self.rule.merge_gap_s:
                    events += self._finish()
        return events

    def close(self) -> list[AlarmEvent]:
        """The stream ended: end the open alarm, if any."""
        return self._finish()

    def _finish(self) -> list[AlarmEvent]:
        if self._start is None:
            return []
        alarm = Alarm(self._start, self._last, self._peak,
                      self._sum / (self._last - self._start + 1))
        started, self._start, self._started = self._started, None, False
        return [AlarmEvent("end", alarm.end_frame, alarm)] if started else []


# ------------------------------------------------------------------------ --alarms targets
@dataclass(frozen=True)
class Target:
    """What ``--alarms`` asks for: ``per_hour`` alarms per hour of normal video, a frame
    false-alarm rate ``far``, or a plain ``threshold``."""
    kind: str
    value: float

    def spell(self) -> str:
        """The spelling ``--alarms`` takes (and calibration.json's ``target``)."""
        if self.kind == "per_hour":
            return f"{self.value:g}/h"
        if self.kind == "far":
            return f"far={self.value:g}"
        return f"{self.value:g}"


_PER_HOUR = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*/\s*h\s*$", re.I)
_FAR = re.compile(r"^\s*far\s*=\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*$", re.I)


def parse_target(text: str) -> Target:
    """``1/h``, ``0.1/h``, ``far=0.01`` or a threshold in [0, 1]; UserError otherwise."""
    text = str(text)
    if m := _PER_HOUR.match(text):
        value = float(m.group(1))
        if value > 0:
            return Target("per_hour", value)
    elif m := _FAR.match(text):
        value = float(m.group(1))
        if 0 < value < 1:
            return Target("far", value)
    else:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if 0 <= value <= 1:
            return Target("threshold", value)
    raise UserError(f"--alarms {text}: give alarms per hour of normal video (e.g. 1/h), a "
                    "frame false-alarm rate (e.g. far=0.01), or a threshold between 0 and 1")
