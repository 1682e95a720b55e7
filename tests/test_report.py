"""report.html without a browser: the display reduction keeps every peak, the page embeds
every frame's score exactly and nothing from the network, the alarm rule is the scoring's,
thumbnails come from the source video, and `pipeline report` re-renders a folder."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from evaluate import report, tables
from features.alarms import AlarmRule
from pipeline import cli
from samples.scores import make_scoring_folder


def _page_data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page,
                      re.S)
    return json.loads(found.group(1))


def _f32(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


@pytest.fixture(scope="module")
def scoring(tmp_path_factory):
    return make_scoring_folder(tmp_path_factory.mktemp("scoring") / "test", n_videos=8,
                               frames=8 * 400, seed=3)


def test_envelope_keeps_every_peak_and_valley():
    rng = np.random.default_rng(0)
    p = rng.random(10_007).astype(np.float32)
    k, starts, lo, hi = report.envelope(p, buckets=500)
    assert k == 21 and len(starts) == len(lo) == len(hi) <= 500
    bucket = np.arange(len(p)) // k
    assert (hi[bucket] >= p).all() and (lo[bucket] <= p).all()
    for b in range(len(starts)):                   # each bucket's extremes are frames' values
        part = p[b * k:(b + 1) * k]
        assert hi[b] == part.max() and lo[b] == part.min()
    short = np.linspace(0, 1, 96, dtype=np.float32)
    k, starts, lo, hi = report.envelope(short, buckets=500)
    assert k == 1 and (lo == short).all() and (hi == short).all()


def test_script_json_cannot_close_its_script_and_keeps_key_order():
    obj = {"z": "</script><script>alert(1)</script>", "a": [1, 2], "m": "&<>"}
    text = report.script_json(obj)
    assert "</" not in text and "<" not in text
    assert json.loads(text) == obj and list(json.loads(text)) == ["z", "a", "m"]


def test_alarm_rule_is_the_scorings():
    assert report.alarm_rule({"threshold": 0.7})[0] == AlarmRule(0.7)
    rule, source = report.alarm_rule({"threshold": 0.5, "alarm_rule": {
        "threshold": 0.42, "source": "calibration.json", "merge_gap_s": 1.0,
        "min_duration_s": 0.25}})
    assert rule == AlarmRule(0.42, 1.0, 0.25) and source == "calibration.json"


def test_report_is_one_file_with_every_frame_and_no_remote_reference(scoring):
    made = report.write_report(scoring)
    page = made.path.read_text(encoding="utf-8")
    assert made.path == scoring / "report.html" and made.videos == 8
    # nothing is fetched: no external script, style, image, font or frame
    assert not re.search(r"""<(script|link|img|iframe|source|video)[^>]+(src|href)=["']?\s*"""
                         r"""(https?:)?//""", page, re.I)
    assert "@import" not in page and "<link" not in page
    data = _page_data(page)
    frames = pd.read_parquet(scoring / tables.TABLE)
    videos = pd.read_csv(scoring / tables.VIDEOS)
    assert [v["id"] for v in data["videos"]] == list(videos["video_id"])
    for v in data["videos"]:
        mine = frames[frames["video_id"] == v["id"]]
        np.testing.assert_array_equal(_f32(v["p"]), mine["p_anomaly"].to_numpy(np.float32))
        assert v["n"] == len(mine) and v["k"] == -(-len(mine) // report.DISPLAY_BUCKETS)
    assert data["rule"] == AlarmRule(0.5).to_dict()
    assert all(v["source"] is None for v in data["videos"])   # no feature file, no videos:
    assert 'data-source-note="the scoring names no feature file' in page     # said so
    assert re.search(r"AUC \(frame, all test frames\)</td><td>0\.\d{4}<", page)


def test_long_videos_are_reduced_for_display_but_keep_every_frame_score(tmp_path):
    folder = make_scoring_folder(tmp_path / "long", n_videos=2, frames=2 * 6000, seed=1,
                                 metrics=False)
    made = report.write_report(folder, tmp_path / "elsewhere" / "r.html")
    data = _page_data(made.path.read_text(encoding="utf-8"))
    frames = pd.read_parquet(folder / tables.TABLE)
    for v in data["videos"]:
        p = frames.loc[frames["video_id"] == v["id"], "p_anomaly"].to_numpy(np.float32)
        hi, lo = _f32(v["hi"]), _f32(v["lo"])
        assert v["k"] > 1 and len(hi) <= report.DISPLAY_BUCKETS
        assert hi.max() == p.max() and lo.min() == p.min()
        assert len(_f32(v["p"])) == len(p) == v["n"]
        assert len(base64.b64decode(v["cp"])) == len(hi) * len(data["classes"])
    assert "no metrics" in made.path.read_text(encoding="utf-8")


def test_thumbnail_is_a_small_jpeg_of_the_asked_frame(tmp_path):
    from PIL import Image

    from samples.videos import SampleSpec, write_sample_video

    clip = write_sample_video(SampleSpec("t", "test", "Arson", seed=0, interval=(20, 60),
                                         seconds=10), tmp_path / "t.mp4")
    jpeg = report.take_thumbnail(clip, 5.0, 8.0)
    assert jpeg is not None and jpeg[:2] == b"\xff\xd8" and len(jpeg) < 20_000
    import io
    assert Image.open(io.BytesIO(jpeg)).size[0] == report.THUMB_WIDTH
    assert report.take_thumbnail(tmp_path / "missing.mp4", 1.0, 8.0) is None


def test_pipeline_report_rerenders_a_folder_and_refuses_others_in_one_line(scoring, tmp_path):
    out = tmp_path / "copy.html"
    done = CliRunner().invoke(cli, ["report", str(scoring), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert str(out) in done.output and out.stat().st_size > 1_000_000
    for args in (["report", str(tmp_path / "nowhere")], ["report", str(tmp_path)],
                 ["report", str(scoring), "--out", str(tmp_path)]):
        bad = CliRunner().invoke(cli, args)
        assert bad.exit_code == 2, bad.output
        assert bad.output.startswith("error:") and bad.output.strip().count("\n") == 0


def test_decisions_outputs_are_shown_where_the_scoring_has_them(tmp_path):
    """Issue 18's keys (alarm_rule, detection, events) and alarms.csv, when present."""
    from features.alarms import find_alarms

    folder = make_scoring_folder(tmp_path / "s", n_videos=4, frames=4 * 300, seed=2,
                                 metrics=False)
    body = json.loads((folder / "metrics.json").read_text())
    rule = AlarmRule(0.4, 0.5, 0.2)
    body.update(alarm_rule={**rule.to_dict(), "source": "calibration.json (1/h)"},
                detection={"vadclip": {"iou": [0.1, 0.2], "map": [0.61, 0.52], "avg": 0.565}},
                events={"alarms": 5, "per_hour": 1.25})
    (folder / "metrics.json").write_text(json.dumps(body))
    frames = pd.read_parquet(folder / tables.TABLE)
    fps = pd.read_csv(folder / tables.VIDEOS).set_index("video_id")["fps"]
    rows = [{"video_id": vid, "start_frame": a.start_frame}
            for vid, g in frames.groupby("video_id", sort=False)
            for a in find_alarms(g["p_anomaly"].to_numpy(), fps[vid], rule)]
    assert rows
    pd.DataFrame(rows).to_csv(folder / "alarms.csv", index=False)
    page = report.write_report(folder).path.read_text(encoding="utf-8")
    assert _page_data(page)["rule"] == rule.to_dict() and "calibration.json (1/h)" in page
    assert "detection mAP (vadclip)</td><td>0.5650  (IoU 0.10: 0.610, 0.20: 0.520)" in page
    assert "alarms: per_hour</td><td>1.2500" in page
    assert "alarms.csv lists" not in page                 # it agrees with the rule
    pd.DataFrame(rows[1:]).to_csv(folder / "alarms.csv", index=False)
    page = report.write_report(folder).path.read_text(encoding="utf-8")
    assert f"alarms.csv lists {len(rows) - 1} alarms, the alarm rule gives {len(rows)}" in page
