"""One name per concept on the command line: choice lists read from the stages' own tables,
--val-seed (the validation draw) apart from --seed (training), --run for the run to score,
each package's front door, and progress that never writes carriage returns into a log."""
from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from features.store import open_store
from pipeline import DATASETS, PRESETS, cli
from tests.dataset_files import make_store, write
from tests.media import make_video
from tests.processes import cli as run_cli

MANIFEST = "video,split,label,intervals\nn1,train,normal,\nn2,train,normal,\na1,train,Theft,\n" \
           "a2,train,Theft,\nt1,test,Theft,10-20\n"


def test_cli_choices_are_the_stages_own_tables():
    import features.datasets
    import train.presets
    from features.schema import SPLITS

    assert DATASETS == features.datasets.DATASETS
    assert PRESETS == tuple(train.presets.PRESETS)
    score = {p.name: p for p in cli.commands["score"].params}
    assert list(score["split"].type.choices) == [*SPLITS, "all"]
    assert list({p.name: p for p in cli.commands["train"].params}["preset"].type.choices) == \
        list(PRESETS)
    for command in ("label", "import", "extract"):
        options = {p.name: p for p in cli.commands[command].params}
        assert list(options["dataset"].type.choices) == list(DATASETS)


def test_front_doors_are_exported_by_their_packages():
    import evaluate
    import extract
    import train
    from evaluate.stage import score_split, score_video
    from extract.stage import extract_videos
    from train.stage import train as train_stage

    assert extract.extract_videos is extract_videos and train.train is train_stage
    assert evaluate.score_split is score_split and evaluate.score_video is score_video


@pytest.fixture()
def store(tmp_path):
    return make_store(tmp_path / "f.h5", {"n1": 900, "n2": 800, "a1": 700, "a2": 600,
                                          "t1": 500})


def test_val_seed_of_label(store, tmp_path):
    manifest = write(tmp_path / "m.csv", MANIFEST)
    runner = CliRunner()
    args = ["label", str(store), "--dataset", "csv", "--annotations", str(manifest),
            "--val-fraction", "0.5"]
    res = runner.invoke(cli, [*args, "--val-seed", "7"])
    assert res.exit_code == 0, res.output
    assert "val seed 7" in res.output
    with open_store(store) as s:
        assert s.attrs["val_seed"] == 7
    res = runner.invoke(cli, [*args, "--seed", "3"])        # the old name is gone: --seed trains
    assert res.exit_code == 2 and "No such option '--seed'" in res.output
    assert "--val-seed" in runner.invoke(cli, ["label", "--help"]).output
    assert "--seed " not in runner.invoke(cli, ["label", "--help"]).output


def test_score_names_the_run_with_run(tmp_path):
    runner = CliRunner()
    missing = tmp_path / "no_runs"
    res = runner.invoke(cli, ["score", "--run", str(missing)])
    assert res.exit_code == 2 and f"{missing}: no such run folder" in res.output
    assert "--run RUN_DIR" in res.output
    res = runner.invoke(cli, ["score", "--checkpoint", str(missing)])   # its old name is gone
    assert res.exit_code == 2 and "No such option '--checkpoint'" in res.output


def test_progress_off_a_terminal_is_plain_lines(caplog):
    from features.progress import Progress

    with caplog.at_level(logging.INFO, logger="pipeline"):
        with Progress(25, "videos", "video", every=10) as bar:
            for _ in range(25):
                bar.update(1)
        with Progress(5, "quiet", "video", show=False) as quiet:
            quiet.update(5)
        with Progress(1000, "frames", "frame", lines=False) as frames:
            frames.update(1000)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" in ")[0] for line in lines] == \
        ["videos 10/25 (40%)", "videos 20/25 (80%)", "videos 25/25 (100%)"]
    assert quiet.silent and frames.silent and not bar.silent


def test_progress_on_a_terminal_is_a_bar(monkeypatch, caplog):
    import features.progress as progress

    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    with caplog.at_level(logging.INFO, logger="pipeline"):
        with progress.Progress(3, "videos", "video") as bar:
            bar.update(3)
            assert bar._bar is not None and bar._bar.n == 3
    assert not caplog.records


def test_extract_into_a_log_file_writes_lines_not_bar_frames(tmp_path, tiny_clip):
    for i in range(3):
        make_video(tmp_path / "videos" / f"v{i}.mp4", size="96x64", rate="10", seconds=0.5)
    proc = run_cli("extract", "--videos", tmp_path / "videos", "--out", tmp_path / "f.h5",
                   "--model", tiny_clip, "--workers", "1")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert "\r" not in out + err
    assert "videos 3/3 (100%)" in err and "probing 3/3" in err
