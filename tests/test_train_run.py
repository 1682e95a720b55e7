"""Stage two, one run: learning on synthetic anomalies, determinism, outputs, checkpoints,
validation carving, HDF5 vs in-memory windows, and the one-line errors."""
from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from features.errors import UserError
from features.store import open_store
from pipeline import cli
from tests.dataset_files import edit_labels
from tests.train_helpers import TINY, split_metrics
from train.rundir import find_best_run, load_run
from train.config import build_config
from train.run import initial_model, train_run
from train.splits import training_split
from train.stage import train
from train.sweep import package_version


@pytest.fixture(scope="module")
def trained(synthetic_store, tmp_path_factory):
    """The same 12-epoch run twice (seed 0): for learning, determinism and outputs."""
    config = build_config(overrides={**TINY, "epochs": 12})
    root = tmp_path_factory.mktemp("runs")
    a = train_run(synthetic_store, config, root / "a", progress=False)
    b = train_run(synthetic_store, config, root / "b", progress=False)
    return config, a, b


def test_short_training_detects_synthetic_anomalies(trained, synthetic_store):
    config, a, _ = trained
    model, cfg = load_run(a.run_dir)
    learned = split_metrics(model, synthetic_store, "test")       # frame labels from intervals
    with open_store(synthetic_store) as store:
        split = training_split(store, config.val_fraction, config.val_seed)
        untrained = split_metrics(initial_model(store, split, config, "cpu"), synthetic_store)
    print("learned", learned, "untrained", untrained)
    assert learned["auc"] >= 0.9
    assert learned["auc"] - untrained["auc"] >= 0.2, (learned, untrained)
    assert learned["mauc"] >= 0.9                                  # recognition too


def test_same_seed_same_metrics_other_seed_differs(trained, synthetic_store, tmp_path):
    config, a, b = trained
    cols = [c for c in a.history.columns if c != "time_s"]
    pd.testing.assert_frame_equal(a.history[cols], b.history[cols])
    assert a.best == b.best and a.best_epoch == b.best_epoch
    other = train_run(synthetic_store, config.with_overrides({"seed": 1, "epochs": 1}),
                      tmp_path / "c", progress=False)
    assert other.history["loss"].iloc[0] != a.history["loss"].iloc[0]


def test_run_writes_checkpoint_metrics_and_plot(trained, synthetic_store):
    _, a, _ = trained
    files = {p.name for p in a.run_dir.iterdir()}
    assert {"model.safetensors", "config.json", "metrics.csv", "loss.png", "result.json"} <= files
    history = pd.read_csv(a.run_dir / "metrics.csv")
    assert len(history) == 12
    # carved validation videos have only video-level labels: the column names say so
    assert {"val_auc_videolabel", "val_ap_videolabel", "val_mauc_videolabel",
            "val_video_auc", "loss", "dir_abn", "smooth", "lr"} <= set(history.columns)
    cfg = json.loads((a.run_dir / "config.json").read_text())
    assert cfg["class_names"] == ["Arson", "Fighting", "Normal", "Road_Accidents"]
    assert cfg["normal_index"] == 2 and cfg["num_segments"] == 8 and cfg["seg_length"] == 4
    assert cfg["select_metric"] == "video_auc" and cfg["val_source"] == "carved"
    assert cfg["best_epoch"] == a.best_epoch
    best_row = history[history["epoch"] == a.best_epoch].iloc[0]
    assert best_row["val_video_auc"] == pytest.approx(history["val_video_auc"].max())
    with open_store(synthetic_store) as store:
        meta = store.metadata().set_index("video_id")
        assert cfg["model_sha256"] == store.attrs["model_sha256"]
    assert set(meta.loc[cfg["val_videos"], "split"]) == {"train"}   # never test videos
    val = meta.loc[cfg["val_videos"]]
    assert (val["class_name"] == "Normal").sum() == 5                # 20% of 24, per class
    assert (val["class_name"] != "Normal").sum() == 6                # 2 of each 8-video class


def test_loaded_checkpoint_scores_like_the_trained_model(trained, synthetic_store):
    _, a, _ = trained
    model, cfg = load_run(a.run_dir)
    assert not model.training and model.prompt_learner is None
    assert model.selector.norm.num_batches_tracked.item() > 0      # BN running statistics
    m1 = split_metrics(model, synthetic_store, "test")
    m2 = split_metrics(load_run(a.run_dir)[0], synthetic_store, "test")
    assert m1 == m2
    assert find_best_run(a.run_dir) == a.run_dir


def test_store_validation_split_and_hdf5_windows_match_memory(tiny_clip, tmp_path):
    from samples.synthetic import make_synthetic_store

    store = make_synthetic_store(tmp_path / "s.h5", tiny_clip, n_train_normal=10,
                                 n_train_abnormal=10, n_val_normal=3, n_val_abnormal=3,
                                 n_test_normal=2, n_test_abnormal=2, seed=3)
    base = build_config(overrides={**TINY, "epochs": 2})
    mem = train_run(store, base.with_overrides({"cache": "memory"}), tmp_path / "m",
                    progress=False)
    h5 = train_run(store, base.with_overrides({"cache": "hdf5", "loader_workers": 1}),
                   tmp_path / "h", progress=False)
    cols = [c for c in mem.history.columns if c != "time_s"]
    pd.testing.assert_frame_equal(mem.history[cols], h5.history[cols])
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["val_source"] == "store" and len(cfg["val_videos"]) == 6
    assert cfg["select_metric"] == "auc"                            # val has intervals
    assert "val_auc" in mem.history.columns


def test_cli_train_writes_summary_and_reuses_a_finished_run(synthetic_store, tmp_path, caplog):
    args = ["train", "--features", str(synthetic_store), "--out", str(tmp_path / "runs"),
            "--epochs", "1", "--device", "cpu"]
    for key, value in TINY.items():
        if key != "device":
            args += ["--set", f"{key}={value}"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "best run:" in first.output
    table = pd.read_csv(tmp_path / "runs" / "summary.csv")
    assert len(table) == 1 and table["best"].tolist() == [True]
    run = find_best_run(tmp_path / "runs")
    assert (run / "model.safetensors").exists()
    mtime = (run / "model.safetensors").stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline"):
        again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0
    assert (run / "model.safetensors").stat().st_mtime_ns == mtime    # not retrained
    reuse = [m for m in caplog.messages if "reusing finished run" in m]
    assert len(reuse) == 1 and f"version {package_version()}" in reuse[0], caplog.messages
    assert len(pd.read_csv(tmp_path / "runs" / "summary.csv")) == 1


def test_config_precedence_and_presets(tmp_path):
    ucf = build_config("ucf-crime")
    assert (ucf.lr, ucf.warmup_epochs, ucf.epochs, ucf.width, ucf.depth, ucf.weight_decay) == \
        (1e-5, 5, 50, 256, 1, 0.2)
    xd = build_config("xd-violence")
    assert (xd.lr, xd.width, xd.depth) == (5e-6, 128, 1)
    sht = build_config("shanghaitech")
    assert (sht.lr, sht.warmup_epochs, sht.epochs, sht.depth, sht.concat_selector) == \
        (5e-4, 10, 100, 2, True)
    from train.presets import PRESETS, check_classes
    check_classes(PRESETS["shanghaitech"], ["Anomaly", "Normal"], "s.h5")   # detection-only
    check_classes(PRESETS["ucf-crime"], [c.replace("RoadAccidents", "Road_Accidents")
                                         for c in PRESETS["ucf-crime"].class_names], "s.h5")
    with pytest.raises(UserError, match="expects 18"):
        check_classes(PRESETS["shanghaitech"], ["Theft", "Normal"], "s.h5")
    (tmp_path / "c.yaml").write_text("preset: xd-violence\nlr: 1.0e-4\ndepth: 3\n")
    cfg = build_config(config_file=tmp_path / "c.yaml", overrides={"depth": 2})
    assert (cfg.preset, cfg.width, cfg.lr, cfg.depth) == ("xd-violence", 128, 1e-4, 2)
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 7}))
    assert build_config("ucf-crime", tmp_path / "c.json").epochs == 7
    (tmp_path / "c.bin").write_bytes(b"\x89HDF\r\n\x1a\n\xff\xfe")
    for bad, message in ((tmp_path / "c.bin", "not a text file"), (tmp_path, "no such file")):
        with pytest.raises(UserError, match=message) as err:
            build_config(config_file=bad)
        assert "\n" not in str(err.value)


def _copy_store(src, dst, edit):
    dst.write_bytes(src.read_bytes())
    edit(dst)
    return dst


def _relabel(split=None, class_name=None):
    def change(labels):
        for v in labels.videos.values():
            if v.split == "train" and (class_name is None or v.class_name == class_name):
                v.split = split
    return lambda path: edit_labels(path, change)


def _drop_labels(path):
    def change(labels):
        labels.videos.clear()
        del labels.file_attrs["class_names"]
    edit_labels(path, change)


def _seven_classes(path):
    edit_labels(path, lambda labels: labels.file_attrs.update(class_names=[
        "Abuse", "Arson", "Explosion", "Fighting", "Normal", "Road_Accidents", "Vandalism"]))


def _wrong_sha(path):
    with h5py.File(path, "r+") as h5:
        h5.attrs["model_sha256"] = "0" * 64


@pytest.mark.parametrize("edit, options, message", [
    (_drop_labels, {}, "no labels"),
    (_relabel("test", "Normal"), {}, "no normal training videos"),
    (None, {"preset": "ucf-crime"}, "expects 14"),
    (_seven_classes, {"preset": "xd-violence"}, "classes Arson, Road_Accidents, Vandalism are "
                                                "not in preset xd-violence"),
    (_wrong_sha, {}, "sha256"),
    (None, {"settings": {"learning_rate": 1}}, "unknown setting"),
    (None, {"settings": {"batch_size": 3}}, "must be even"),
    (None, {"settings": {"device": "banana"}}, "--device banana: not a device"),
])
def test_errors_are_one_clear_line(synthetic_store, tmp_path, edit, options, message):
    store = _copy_store(synthetic_store, tmp_path / "s.h5", edit) if edit else synthetic_store
    with pytest.raises(UserError, match=message) as err:
        train(store, out=tmp_path / "runs", progress=False,
              **{"settings": {**TINY, "epochs": 1, **options.pop("settings", {})}, **options})
    assert "\n" not in str(err.value)


def test_error_no_abnormal_training_videos(synthetic_store, tmp_path):
    def change(labels):
        for v in labels.videos.values():
            if v.split == "train" and v.class_name != "Normal":
                v.split = "test"
    store = _copy_store(synthetic_store, tmp_path / "s.h5",
                        lambda path: edit_labels(path, change))
    with pytest.raises(UserError, match="no abnormal training videos"):
        train(store, settings=TINY, out=tmp_path / "runs", progress=False)


def test_error_dim_mismatch_and_cli_prints_one_line(synthetic_store, tmp_path):
    from features.labels import write_labels
    from features.store import write_file_attrs, write_video

    path = tmp_path / "d256.h5"
    with open_store(synthetic_store) as src, h5py.File(path, "w") as h5:
        attrs = dict(src.attrs)
        write_file_attrs(h5, {**attrs, "embed_dim": 256})
        meta = src.metadata()
        rng = np.random.default_rng(0)
        for row in meta.itertuples():
            write_video(h5, row.video_id, rng.standard_normal((40, 256)).astype(np.float16),
                        np.arange(40), np.arange(40) * 33.3, {"n_frames": 40, "fps": 30.0})
    write_labels(path, meta[["video_id", "split", "class_name", "intervals"]],
                 ["Arson", "Fighting", "Normal", "Road_Accidents"], "synthetic")
    args = ["train", "--features", str(path), "--out", str(tmp_path / "runs"), "--epochs", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    lines = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "256-d" in lines[0] and "512-d" in lines[0]


def test_undefined_validation_metric_keeps_the_latest_epoch(tiny_clip, tmp_path):
    from samples.synthetic import make_synthetic_store

    store = make_synthetic_store(tmp_path / "s.h5", tiny_clip, n_train_normal=6,
                                 n_train_abnormal=6, n_val_normal=2, n_val_abnormal=0,
                                 n_test_normal=0, n_test_abnormal=0, seed=4)
    run = train_run(store, build_config(overrides={**TINY, "epochs": 3}), tmp_path / "r",
                    progress=False)
    assert run.history["val_auc"].isna().all()       # only normal validation videos
    assert run.best_epoch == 3
    assert json.loads((tmp_path / "r" / "config.json").read_text())["best_epoch"] == 3


def test_damaged_run_folder_is_a_one_line_error(tmp_path):
    from train.rundir import save_checkpoint
    from train.model import AnomalyCLIP

    classes = ["Arson", "Normal"]
    cfg = {"class_names": classes, "normal_index": 1, "embed_dim": 16, "num_segments": 4,
           "seg_length": 2, "width": 8, "depth": 1, "heads": 2, "concat_selector": False}
    model = AnomalyCLIP(classes, 1, 16, 4, 2, 8, 1, 2, False, centroid=torch.randn(16))
    save_checkpoint(model, cfg, tmp_path / "ok")
    loaded, _ = load_run(tmp_path / "ok")
    torch.testing.assert_close(loaded.centroid, model.centroid)
    cases = {"config": ("config.json", b"{not json", "not readable JSON"),
             "weights": ("model.safetensors", b"xx", "not readable safetensors")}
    for name, (file, body, message) in cases.items():
        run = tmp_path / name
        run.mkdir()
        for f in ("config.json", "model.safetensors"):
            (run / f).write_bytes((tmp_path / "ok" / f).read_bytes())
        (run / file).write_bytes(body)
        with pytest.raises(UserError, match=message) as err:
            load_run(run)
        assert "\n" not in str(err.value) and file in str(err.value)
    wider = tmp_path / "wider"
    save_checkpoint(model, {**cfg, "width": 16}, wider)      # config no longer fits the weights
    with pytest.raises(UserError, match="weights do not fit"):
        load_run(wider)


def test_train_into_a_log_file_writes_one_line_per_epoch(synthetic_store, tmp_path):
    """`pipeline train > log 2>&1`: progress on, no terminal: plain lines, no bar frames."""
    import re

    from tests.processes import cli as run_cli

    args = ["train", "--features", synthetic_store, "--out", tmp_path / "runs",
            "--epochs", "3", "--device", "cpu"]
    for key, value in TINY.items():
        if key != "device":
            args += ["--set", f"{key}={value}"]
    proc = run_cli(*args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert "\r" not in out + err
    epochs = [line for line in err.splitlines() if re.search(r" steps, epoch \d/3, loss ", line)]
    assert [re.search(r"epoch (\d)/3", line).group(1) for line in epochs] == ["1", "2", "3"], err
    assert all("lr " in line and "val_" in line and "ETA" in line for line in epochs), epochs
