"""Intervals found in scores, the frame table and the figures (no model needed)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluate import plots, tables
from evaluate.summary import summarize
from evaluate.intervals import find_intervals
from features.alarms import runs_above

NAMES = ["Arson", "Fighting", "Normal"]


def _probs(s, share_arson):
    """(F, 3) P with P(normal) = 1 - s and the anomaly mass split share / 1 - share."""
    return np.c_[s * share_arson, s * (1 - share_arson), 1 - s]


def test_runs_above_threshold_inclusive():
    s = np.array([0.1, 0.6, 0.5, 0.2, 0.9, 0.1, 0.7])
    assert runs_above(s, 0.5) == [(1, 2), (4, 4), (6, 6)]
    assert runs_above(np.zeros(4), 0.5) == []
    assert runs_above(np.ones(3), 0.5) == [(0, 2)]


def test_find_intervals_merges_gaps_drops_short_runs_and_names_the_class():
    fps = 10.0
    s = np.full(100, 0.1)
    s[20:40] = 0.8
    s[42:50] = 0.9                     # 2 frames (0.2 s) after the first run: merged
    s[70:72] = 0.95                    # 0.2 s long: dropped with min_len_s=0.5
    share = np.where(np.arange(100) < 45, 0.2, 0.9)   # mostly Fighting in the merged run
    found = find_intervals(s, _probs(s, share), NAMES, fps, min_gap_s=0.5, min_len_s=0.5)
    assert len(found) == 1
    iv = found[0]
    assert (iv.start_frame, iv.end_frame) == (20, 49)
    assert (iv.start_s, iv.end_s) == (2.0, 5.0)
    assert iv.class_name == "Fighting" and iv.peak == pytest.approx(0.9)
    apart = find_intervals(s, _probs(s, share), NAMES, fps, min_gap_s=0.1)
    assert [(i.start_frame, i.end_frame) for i in apart] == [(20, 39), (42, 49), (70, 71)]
    assert [i.class_name for i in apart] == ["Fighting", "Arson", "Arson"]


def test_frame_table_columns_and_times():
    s = np.linspace(0, 1, 7)
    p = _probs(s, np.full(7, 0.25))
    times = tables.frame_times(7, 25.0, 1, np.arange(7) * 40.0)
    table = tables.frame_table("v1", s, p, NAMES, times, np.array([0, 0, 1, 1, 1, 0, 0]), "Arson")
    assert list(table.columns) == ["video_id", "frame", "time_s", "p_anomaly", "pred_class",
                                   "p_Arson", "p_Fighting", "p_Normal", "label", "class_name"]
    assert table["time_s"].tolist() == pytest.approx([i * 0.04 for i in range(7)])
    assert table["pred_class"].tolist() == ["Normal"] * 4 + ["Fighting"] * 3
    unknown = tables.frame_table("v2", s, p, NAMES, times, None, None)
    assert unknown["label"].isna().all()
    # at stride > 1 the stored timestamps cover rows, not frames: frame / fps instead
    assert tables.frame_times(6, 2.0, 3, np.array([0.0, 1500.0])).tolist() == \
        [0, 0.5, 1, 1.5, 2, 2.5]


def test_metrics_json_writes_nan_as_null(tmp_path):
    path = tables.write_metrics(tmp_path / "m.json", {"metrics": {"auc": float("nan"),
                                                                  "ap": np.float64(0.5)}})
    assert path.read_text().count("null") == 1 and '"ap": 0.5' in path.read_text()


def test_figures_are_written(tmp_path):
    rng = np.random.default_rng(0)
    y = np.zeros(200, int)
    y[80:120] = 1
    s = np.clip(0.2 + 0.6 * y + rng.normal(0, 0.1, 200), 0, 1)
    found = find_intervals(s, _probs(s, np.full(200, 0.8)), NAMES, 8.0)
    png = plots.video_figure("v", s, _probs(s, np.full(200, 0.8)), NAMES, 8.0,
                             tmp_path / "plots" / "v.png", [(80, 119)], y, "Arson", 0.5, found)
    got, _ = summarize(pd.DataFrame({"video_id": "v", "p_anomaly": s, "label": y,
                                       **{f"p_{n}": c for n, c in
                                          zip(NAMES, _probs(s, np.full(200, 0.8)).T)}}),
                         pd.DataFrame({"video_id": ["v"], "label": [1],
                                       "class_names_all": [["Arson"]]}), NAMES)
    summary = plots.summary_figure(y, s, got, tmp_path / "summary.png", "test")
    for path in (png, summary):
        assert path.exists() and path.stat().st_size > 10_000
    mask, what = plots.anomalous_part(s, None, 0.5)
    assert mask.sum() == (s >= 0.5).sum() and "p(anomaly) >= 0.50" in what
