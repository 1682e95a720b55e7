"""The alarm rule (features/alarms.py): worked cases, and the live tracker equal to it."""
from __future__ import annotations

import numpy as np
import pytest

from features.alarms import (Alarm, AlarmRule, AlarmTracker, Target, alarm_spans, find_alarms,
                             parse_target)
from features.errors import UserError


def curve(*ones, n=20):
    s = np.zeros(n)
    for a, b in ones:
        s[a:b + 1] = 0.9
    return s


def test_runs_merge_across_short_gaps_and_short_alarms_drop():
    s = curve((2, 3), (5, 6), (12, 12), n=20)          # gaps: 1 frame, then 5 frames
    # 10 fps: a 1-frame gap is 0.1 s (< 0.15: merged), 5 frames 0.5 s (kept apart)
    assert alarm_spans(s, 10, AlarmRule(0.5, 0.15, 0.0)) == [(2, 6), (12, 12)]
    # 0.2 s minimum: the single frame at 12 (0.1 s) goes, the merged 2-6 (0.5 s) stays
    assert alarm_spans(s, 10, AlarmRule(0.5, 0.15, 0.2)) == [(2, 6)]
    # no merging at all with a zero gap
    assert alarm_spans(s, 10, AlarmRule(0.5, 0.0, 0.0)) == [(2, 3), (5, 6), (12, 12)]
    # a gap is merged only when strictly shorter than merge_gap_s: 1 frame = 0.1 s
    assert alarm_spans(s, 10, AlarmRule(0.5, 0.1, 0.0)) == [(2, 3), (5, 6), (12, 12)]


def test_threshold_is_inclusive_and_alarm_fields():
    s = np.array([0.1, 0.5, 0.7, 0.2, 0.0])
    [alarm] = find_alarms(s, 2.0, AlarmRule(0.5, 0.0, 0.0))
    assert alarm == Alarm(1, 2, 0.7, pytest.approx(0.6))
    assert (alarm.start_s(2.0), alarm.end_s(2.0), alarm.duration_s(2.0)) == (0.5, 1.5, 1.0)
    # the mean covers the merged gap's frames too
    [merged] = find_alarms(np.array([0.9, 0.1, 0.8]), 10, AlarmRule(0.5, 0.5, 0.0))
    assert (merged.start_frame, merged.end_frame) == (0, 2)
    assert merged.mean == pytest.approx(0.6)


def _tracked(s, fps, rule, chunk):
    tracker, events = AlarmTracker(rule, fps), []
    for i in range(0, len(s), chunk):
        events += tracker.push(s[i:i + chunk])
    events += tracker.close()
    return events


@pytest.mark.parametrize("seed", range(40))
def test_tracker_fed_in_chunks_finds_the_offline_alarms(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 400))
    # smooth-ish curves with bursts, so that merging and dropping both happen
    s = np.clip(np.convolve(rng.random(n), np.ones(3) / 3, "same")
                + (rng.random(n) < 0.05) * 0.5, 0, 1)
    rule = AlarmRule(float(rng.uniform(0.3, 0.8)), float(rng.choice([0.0, 0.3, 1.0, 2.5])),
                     float(rng.choice([0.0, 0.25, 1.0])))
    fps = float(rng.choice([5.0, 8.0, 25.0, 29.97]))
    offline = find_alarms(s, fps, rule)
    events = _tracked(s, fps, rule, int(rng.integers(1, 50)))
    ends = [e.alarm for e in events if e.kind == "end"]
    starts = [e for e in events if e.kind == "start"]
    assert [(a.start_frame, a.end_frame) for a in ends] == \
        [(a.start_frame, a.end_frame) for a in offline]
    for got, want in zip(ends, offline):
        assert got.peak == pytest.approx(want.peak) and got.mean == pytest.approx(want.mean)
    assert [e.frame for e in starts] == [a.start_frame for a in offline]
    assert [e.kind for e in events] == ["start", "end"] * len(offline)


def test_tracker_is_causal_start_when_the_minimum_is_reached_end_after_the_gap():
    rule = AlarmRule(0.5, merge_gap_s=0.3, min_duration_s=0.2)        # at 10 fps: 3 and 2 frames
    tracker = AlarmTracker(rule, 10)
    assert tracker.push([0.9]) == []                                # 0.1 s: not yet an alarm
    [start] = tracker.push([0.9])
    assert (start.kind, start.frame, tracker.open) == ("start", 0, True)
    assert tracker.push([0.0, 0.0]) == []                           # 0.2 s gap: may still merge
    [end] = tracker.push([0.0])                                     # 0.3 s gap: closed
    assert (end.kind, end.frame, end.alarm.end_frame, tracker.open) == ("end", 1, 1, False)
    assert tracker.push([0.9]) + tracker.close() == []              # 0.1 s: dropped at close


@pytest.mark.parametrize("text, target", [
    ("1/h", Target("per_hour", 1.0)), ("0.1/h", Target("per_hour", 0.1)),
    (" 10 / h ", Target("per_hour", 10.0)), ("far=0.01", Target("far", 0.01)),
    ("FAR=1e-3", Target("far", 0.001)), ("0.7", Target("threshold", 0.7)),
    ("0", Target("threshold", 0.0)), ("1", Target("threshold", 1.0))])
def test_alarm_targets_parse_and_spell_back(text, target):
    assert parse_target(text) == target
    assert parse_target(target.spell()) == target


@pytest.mark.parametrize("text", ["", "abc", "0/h", "-1/h", "far=0", "far=1", "1.5", "-0.1",
                                  "1/d", "far=x"])
def test_bad_alarm_targets_are_one_line_errors(text):
    with pytest.raises(UserError, match="--alarms"):
        parse_target(text)
