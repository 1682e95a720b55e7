"""The end-to-end demo (generate -> extract -> label -> train -> score) learns, and the trained
run scores new videos through `pipeline score --video`. One demo run (the session's ``demo``
fixture, tests/conftest.py) serves every test here and the report's browser tests."""
from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from evaluate import score_split, score_video
from extract import extract_videos
from samples.videos import SampleSpec, write_sample_video
from features.errors import UserError
from pipeline import cli
from tests.dataset_files import edit_labels


def test_demo_learns_and_writes_every_output(demo):
    workdir, output = demo
    scores = workdir / "scores" / "test"
    body = json.loads((scores / "metrics.json").read_text())
    m = body["metrics"]
    assert m["auc"] >= 0.9, output                  # learning happened (random CLIP features)
    assert m["mauc"] >= 0.8 and m["false_alarm_rate"] <= 0.1, output
    assert f"{m['auc']:.4f}" in output and "summary.png" in output
    assert f"report    {scores / 'report.html'}" in output          # the demo prints its path
    assert "report.html" in body["files"] and (scores / "report.html").stat().st_size < 5e6
    manifest = pd.read_csv(workdir / "samples" / "manifest.csv", keep_default_na=False)
    test = manifest[manifest["split"] == "test"]
    frames = pd.read_parquet(scores / "frame_scores.parquet")
    n_frames = 96                                   # 12 s at 8 fps
    assert len(frames) == len(test) * n_frames == m["n_frames"]
    probs = frames[["p_Arson", "p_Fighting", "p_Normal", "p_Road_Accidents"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    np.testing.assert_allclose(frames["p_Normal"], 1 - frames["p_anomaly"], atol=1e-5)
    for row in test.itertuples():                   # labels follow the manifest's intervals
        y = frames.loc[frames["video_id"] == row.video[:-4], "label"].to_numpy()
        expected = np.zeros(n_frames, int)
        if row.intervals:
            start, end = map(int, row.intervals.split("-"))
            expected[start:end + 1] = 1
        assert (y == expected).all()
    assert len(list((scores / "plots").glob("*.png"))) == len(test)
    assert (scores / "summary.png").stat().st_size > 10_000
    per_class = pd.read_csv(scores / "per_class.csv")
    assert list(per_class["class_name"]) == ["Arson", "Fighting", "Road_Accidents"]


def test_score_video_cli_writes_table_plot_intervals_and_render(demo, tmp_path):
    workdir, _ = demo
    video = workdir / "samples" / "test_Road_Accidents_00.mp4"
    manifest = pd.read_csv(workdir / "samples" / "manifest.csv", keep_default_na=False)
    start, end = map(int, manifest.set_index("video").at[video.name, "intervals"].split("-"))
    out = tmp_path / "one"
    result = CliRunner().invoke(cli, ["score", "--video", str(video), "--run",
                                      str(workdir / "runs"), "--out", str(out), "--render"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    frames = pd.read_parquet(out / "frame_scores.parquet")
    assert len(frames) == 96 and frames["label"].isna().all()
    assert (out / "plots" / "test_Road_Accidents_00.png").exists()
    assert (out / "test_Road_Accidents_00_scored.mp4").stat().st_size > 10_000
    found = json.loads((out / "metrics.json").read_text())["intervals"]["test_Road_Accidents_00"]
    assert found and "anomalous intervals in test_Road_Accidents_00" in result.output
    best = max(found, key=lambda iv: iv["peak"])
    assert best["start_frame"] <= end and best["end_frame"] >= start      # overlaps the truth
    assert f"{best['start_s']:.2f}" in result.output
    page = (out / "report.html").read_text(encoding="utf-8")      # its report plays the file
    data = json.loads(page.split('id="report-data">', 1)[1].split("</script>", 1)[0])
    (one,) = data["videos"]
    assert (out / one["source"]).resolve() == video.resolve() and one["thumbs"]


def test_trained_model_aligns_a_stride_3_video_and_skips_metrics_without_labels(demo, tmp_path):
    workdir, _ = demo
    spec = SampleSpec("odd", "test", "Arson", seed=5, interval=(30, 60), seconds=12.5)
    write_sample_video(spec, tmp_path / "v" / "odd.mp4")    # 100 frames: not a multiple of 3/16
    store = tmp_path / "stride3.h5"
    with h5py.File(workdir / "features.h5", "r") as h5:
        model = h5.attrs["model_id"]
    assert not extract_videos(tmp_path / "v", out=store, model=model, stride=3,
                              progress=False).failed
    result = score_split(store, run=workdir / "runs", split="test", out=tmp_path / "s",
                         progress=False)
    assert result.metrics is None and any("no labels" in n for n in result.notes)
    assert any("stride 1" in n for n in result.notes)
    assert len(result.frames) == 100                            # 34 rows -> 100 frames
    s = result.frames["p_anomaly"].to_numpy()
    assert (s[:99].reshape(33, 3) == s[:99:3, None]).all()      # each row over its 3 frames
    assert len(np.unique(s)) > 10                               # and rows do differ
    assert json.loads((tmp_path / "s" / "metrics.json").read_text())["metrics"] is None
    assert (tmp_path / "s" / "frame_scores.parquet").exists()


def _copy_with_attrs(src, dst, **attrs):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as h5:
        for key, value in attrs.items():
            h5.attrs[key] = value
    return dst


def test_mismatched_store_and_bad_video_are_one_line_errors(demo, tmp_path):
    workdir, _ = demo
    runs, features = workdir / "runs", workdir / "features.h5"
    other_model = _copy_with_attrs(features, tmp_path / "m.h5", model_sha256="0" * 64)
    with pytest.raises(UserError, match="re-extract with --model"):
        score_split(other_model, run=runs, out=tmp_path / "x")
    other_classes = edit_labels(_copy_with_attrs(features, tmp_path / "c.h5"), lambda labels:
                                labels.file_attrs.update(class_names=["Arson", "Normal"]))
    with pytest.raises(UserError, match="classes"):
        score_split(other_classes, run=runs, out=tmp_path / "x")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(UserError, match="cannot be decoded"):
        score_video(bad, run=runs, out=tmp_path / "b")
    result = CliRunner().invoke(cli, ["score", "--video", str(bad), "--run", str(runs),
                                      "--out", str(tmp_path / "b")])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and result.output.startswith("error:")


def test_abnormal_video_without_intervals_is_scored_but_left_out_of_metrics(demo, tmp_path):
    workdir, _ = demo
    store = tmp_path / "f.h5"
    shutil.copy(workdir / "features.h5", store)
    edit_labels(store, lambda labels: labels.videos["test_Arson_00"].intervals.clear())
    result = score_split(store, run=workdir / "runs", out=tmp_path / "s",
                         plots_per_video=False, progress=False)
    frames = result.frames
    assert frames.loc[frames["video_id"] == "test_Arson_00", "label"].isna().all()
    assert len(frames) == 12 * 96 and result.metrics["n_frames"] == 11 * 96
    assert result.metrics["n_videos"] == 11 and any("test_Arson_00" in n for n in result.notes)
    with pytest.raises(UserError, match="split"):
        score_split(store, run=workdir / "runs", split="bogus", out=tmp_path / "x")


# ---------------------------------------------------- issue 13, findings 7 and 17: outputs
def test_demo_keeps_everything_under_its_workdir_with_normal_file_modes(demo):
    from features.safe_write import file_mode

    workdir, _ = demo
    assert not (workdir.parent / "pipeline_out").exists()      # nothing outside --workdir
    assert (workdir / "models" / "tiny-clip" / "model.safetensors").exists()
    files = [p for p in workdir.rglob("*") if p.is_file()]
    assert any(p.name == "model.safetensors" for p in files if "runs" in p.parts)
    modes = {p.relative_to(workdir): oct(p.stat().st_mode & 0o777) for p in files}
    assert set(modes.values()) == {oct(file_mode())}, modes     # 0644 under umask 022


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_score_video_never_writes_into_a_split_folder(demo, tmp_path, monkeypatch):
    workdir, _ = demo
    monkeypatch.setenv("PIPELINE_WORKDIR", str(tmp_path / "wd"))
    runs, features = str(workdir / "runs"), str(workdir / "features.h5")
    test_scores = tmp_path / "wd" / "scores" / "test"          # as `pipeline score` left it
    names = ["frame_scores.parquet", "videos.csv", "per_class.csv", "summary.png",
             "plots/test_Arson_00.png", "metrics.json"]
    for name in names:
        (test_scores / name).parent.mkdir(parents=True, exist_ok=True)
        (test_scores / name).write_text(f"the test split's {name}\n")
    (test_scores / "metrics.json").write_text(json.dumps({"split": "test", "files": names}))
    before = _snapshot(test_scores)
    video = tmp_path / "test.mp4"                      # named like the split
    shutil.copy(workdir / "samples" / "test_Arson_00.mp4", video)
    one = CliRunner().invoke(cli, ["score", "--video", str(video), "--run", runs])
    assert one.exit_code == 0, one.output
    assert _snapshot(test_scores) == before
    own = tmp_path / "wd" / "scores" / "videos" / "test"
    assert json.loads((own / "metrics.json").read_text())["video"] == str(video.resolve())
    assert (own / "plots" / "test.png").exists() and (own / "frame_scores.parquet").exists()
    into_split = CliRunner().invoke(cli, ["score", "--video", str(video), "--run", runs,
                                          "--out", str(test_scores)])
    assert into_split.exit_code == 2 and "holds the scores of split test" in into_split.output
    into_video = CliRunner().invoke(cli, ["score", "--features", features, "--run", runs,
                                          "--out", str(own)])
    assert into_video.exit_code == 2 and "holds the scores of video" in into_video.output
    assert _snapshot(test_scores) == before


def test_rescoring_leaves_no_stale_output_and_a_failed_one_changes_nothing(demo, tmp_path,
                                                                          monkeypatch):
    import evaluate.stage

    workdir, _ = demo
    out, runs = tmp_path / "out", workdir / "runs"
    first = score_split(workdir / "features.h5", run=runs, out=out, csv=True, progress=False)
    assert first.metrics is not None and len(list((out / "plots").glob("*.png"))) == 12
    assert {"per_class.csv", "summary.png", "frame_scores.csv"} <= {p.name for p in out.iterdir()}
    (out / "my_notes.txt").write_text("the user's own file\n")
    before = _snapshot(out)

    def broken(*args, **kwargs):
        raise RuntimeError("disk trouble while drawing")
    real = evaluate.stage.plots.summary_figure
    monkeypatch.setattr(evaluate.stage.plots, "summary_figure", broken)
    with pytest.raises(RuntimeError):
        score_split(workdir / "features.h5", run=runs, out=out, plots_per_video=False,
                    progress=False)
    assert _snapshot(out) == before and not (out / ".partial").exists()
    monkeypatch.setattr(evaluate.stage.plots, "summary_figure", real)

    unlabelled = tmp_path / "unlabelled.h5"                  # every video, no metrics
    shutil.copy(workdir / "features.h5", unlabelled)

    def drop(labels):
        labels.videos.clear()
        del labels.file_attrs["class_names"]
    edit_labels(unlabelled, drop)
    again = score_split(unlabelled, run=runs, out=out, plots_per_video=False, progress=False)
    assert again.metrics is None and len(again.videos) == 36
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert left == ["frame_scores.parquet", "metrics.json", "my_notes.txt", "report.html",
                    "videos.csv"]
    assert json.loads((out / "metrics.json").read_text())["files"] == [
        "frame_scores.parquet", "report.html", "videos.csv", "metrics.json"]
    assert len(pd.read_parquet(out / "frame_scores.parquet")) == 36 * 96
