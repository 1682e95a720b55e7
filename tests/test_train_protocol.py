"""`--protocol reference`: the reference's schedule, epoch length, training videos, last
epoch kept, and how its runs are found by summary.csv and `pipeline score`."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from features.store import open_store
from pipeline import cli
from tests.dataset_files import edit_labels
from tests.train_helpers import TINY
from train.config import build_config
from train.protocol import reference_lr_factor, run_split, steps_per_epoch
from train.run import make_optimizer
from train.sweep import write_summary


def test_reference_schedule_values_at_epoch_0_warmup_and_last():
    # UCF-Crime: warm-up 5, 50 epochs
    assert reference_lr_factor(0, 5, 50) == 0.0                 # epoch 0 trains at lr 0
    assert reference_lr_factor(2, 5, 50) == pytest.approx(0.4)  # epoch / warm-up
    assert reference_lr_factor(5, 5, 50) == 1.0                 # the warm-up epoch: full lr
    last = reference_lr_factor(49, 5, 50)                       # cos from 5 to 50, at 49
    assert last == pytest.approx((1 + math.cos(math.pi * 44 / 45)) / 2) == pytest.approx(
        0.001217, abs=1e-6)
    assert last > 0                                             # 0 only after the last epoch
    # ShanghaiTech: warm-up 10, 100 epochs; half-way through the cosine is 0.5
    assert reference_lr_factor(55, 10, 100) == pytest.approx(0.5)


def test_reference_learning_rate_is_set_per_epoch():
    config = build_config(overrides={"protocol": "reference", "lr": 1.0, "warmup_epochs": 2,
                                     "epochs": 6})
    optimizer, schedule = make_optimizer(torch.nn.Linear(2, 1), config, steps=3)
    lrs = []
    for _ in range(6 * 3):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    per_epoch = [reference_lr_factor(e, 2, 6) for e in range(6)]      # 0, .5, 1, .85, .5, .15
    assert lrs == pytest.approx([f for f in per_epoch for _ in range(3)])
    assert per_epoch[:3] == [0.0, 0.5, 1.0] and per_epoch[-1] == pytest.approx(0.1464, abs=1e-4)


def test_epoch_length_drops_the_last_incomplete_batch_under_the_reference():
    # METHOD: UCF-Crime 810 abnormal / 800 normal -> 25 steps; ShanghaiTech 63 / 175 -> 5
    assert steps_per_epoch(810, 800, 32, "reference") == 25
    assert steps_per_epoch(63, 175, 32, "reference") == 5
    assert steps_per_epoch(3, 5, 32, "reference") == 1
    assert steps_per_epoch(810, 800, 32, "validated") == 26     # every video once


@pytest.fixture(scope="module")
def val_store(tiny_clip, tmp_path_factory):
    """A store with a val split: 10 + 10 train videos, 4 + 4 val videos."""
    from samples.synthetic import make_synthetic_store

    return make_synthetic_store(tmp_path_factory.mktemp("protocol") / "s.h5", tiny_clip,
                                n_train_normal=10, n_train_abnormal=10, n_val_normal=4,
                                n_val_abnormal=4, n_test_normal=3, n_test_abnormal=3, seed=5)


def _mark_carved(path, carved: bool):
    """As `pipeline label --val-fraction` records it (True) or a manifest's own val split."""
    edit_labels(path, lambda labels: labels.file_attrs.update(val_carved=carved))


@pytest.mark.parametrize("carved", [True, False])
def test_reference_trains_on_the_training_lists(val_store, carved):
    _mark_carved(val_store, carved)
    reference = build_config(overrides={**TINY, "protocol": "reference"})
    validated = build_config(overrides=TINY)
    with open_store(val_store) as store:
        ref, ours = run_split(store, reference), run_split(store, validated)
    assert len(ref.val) == 0 and ref.val_source == "none"
    assert len(ours.val) == 8 and ours.val_source == "store"       # ours validates on them
    val_ids = set(ours.val["video_id"])
    if carved:                    # carved from the training lists when labelled: they train
        assert set(ref.train["video_id"]) == set(ours.train["video_id"]) | val_ids
    else:                         # a val split of its own: not a training list, left out
        assert set(ref.train["video_id"]) == set(ours.train["video_id"])
    assert not {"test"} & set(ref.train["split"])


def test_cli_reference_run_keeps_the_last_epoch_and_is_scored(val_store, tmp_path):
    _mark_carved(val_store, True)
    runs = tmp_path / "runs"
    args = ["train", "--features", str(val_store), "--out", str(runs), "--epochs", "3",
            "--protocol", "reference", "--set", "warmup_epochs=2", "--set", "lr=1e-3"]
    args += [a for k, v in TINY.items() if k not in ("lr", "warmup_epochs")
             for a in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(runs / "summary.csv")
    assert table["best"].tolist() == [True] and table["select_metric"].tolist() == ["last_epoch"]
    run = runs / table["run_dir"].iloc[0]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["protocol"] == "reference" and cfg["config"]["protocol"] == "reference"
    assert cfg["best_epoch"] is None and cfg["val_videos"] == [] and cfg["metrics"] == {}
    history = pd.read_csv(run / "metrics.csv")
    # 14 + 14 training videos, 8 per half batch: floor(14 / 8) = 1 step an epoch
    assert history["step"].tolist() == [1, 2, 3]
    assert history["lr"].tolist() == pytest.approx([0.0, 5e-4, 1e-3])   # per epoch
    assert not any(c.startswith("val_") for c in history.columns)
    scored = CliRunner().invoke(cli, ["score", "--features", str(val_store), "--run",
                                      str(runs), "--out", str(tmp_path / "scores")])
    assert scored.exit_code == 0, scored.output
    metrics = json.loads((tmp_path / "scores" / "metrics.json").read_text())
    assert 0 <= metrics["metrics"]["auc"] <= 1 and metrics["metrics"]["mauc"] is not None


def test_runs_without_validation_are_not_ranked_against_validated_ones(tmp_path):
    def rows(names, values, metric):
        return pd.DataFrame({"run": names, "run_dir": names, "features": "a.h5",
                             "status": "ok", "select_metric": metric, "select_value": values})
    nan = float("nan")
    write_summary(tmp_path, rows(["v1", "v2"], [0.7, 0.9], "auc"))
    one = write_summary(tmp_path, rows(["r1"], [nan], "last_epoch"))      # the latest call
    assert one.set_index("run")["best"].to_dict() == {"v1": False, "v2": False, "r1": True}
    many = write_summary(tmp_path, rows(["r2", "r3"], [nan, nan], "last_epoch"))
    assert not many["best"].any()            # no selection among seeds without validation
    back = write_summary(tmp_path, rows(["v3"], [0.8], "auc"))
    assert back.set_index("run")["best"].to_dict()["v2"]     # validated runs rank as before
