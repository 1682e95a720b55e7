"""Stage two resumes (issue 13, finding 8): a run interrupted by Ctrl-C, a crash between its
files or kill -9 continues after its last finished epoch and ends exactly like a run that
was never interrupted (metrics.csv, weights, config.json, per-step losses), on the single-run
path and on the Dask task path; a state written for another configuration or feature file
is never resumed."""
from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import train.run as run_module
from features.errors import UserError
from features.store import open_store
from pipeline import cli
from tests.train_helpers import TINY
from train import resume
from train.config import build_config
from train.run import train_run
from train.splits import training_split
from train.stage import resolve_config
from train.sweep import _run_task, plan_runs

EPOCHS = 4
SETTINGS = {**TINY, "batch_size": 8, "steps_per_epoch": 2, "epochs": EPOCHS}   # short steps
ROOT = Path(__file__).resolve().parents[1]


def run_config(store):
    """What `pipeline train` runs with these settings on ``store`` (the custom preset: the
    synthetic store is no paper dataset), so CLI runs and in-process runs are the same."""
    return resolve_config(store, settings=SETTINGS)


@pytest.fixture
def step_losses(monkeypatch):
    """The per-step losses each finished run hands to loss.png, in call order."""
    seen = []
    real = run_module.plot_losses

    def record(history, losses, path, column):
        seen.append(list(losses))
        return real(history, losses, path, column)
    monkeypatch.setattr(run_module, "plot_losses", record)
    return seen


@pytest.fixture(scope="module")
def reference(synthetic_store, tmp_path_factory):
    """The uninterrupted run: its folder and its per-step losses."""
    seen = []
    with pytest.MonkeyPatch.context() as mp:
        real = run_module.plot_losses
        mp.setattr(run_module, "plot_losses",
                   lambda h, losses, p, c: (seen.append(list(losses)), real(h, losses, p, c)))
        result = train_run(synthetic_store, run_config(synthetic_store),
                           tmp_path_factory.mktemp("reference") / "run", progress=False)
    steps = int(result.history["step"].iloc[0])
    assert len(seen[0]) == EPOCHS * steps
    return result, seen[0], steps


def assert_same_run(a: Path, b: Path) -> None:
    """Same metrics.csv rows (all but wall time), bitwise same weights and config.json."""
    ma, mb = (pd.read_csv(d / "metrics.csv").drop(columns="time_s") for d in (a, b))
    pd.testing.assert_frame_equal(ma, mb, check_exact=True)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    ca, cb = (json.loads((d / "config.json").read_text()) for d in (a, b))
    assert ca == cb
    ra, rb = (json.loads((d / "result.json").read_text()) for d in (a, b))
    assert (ra["best_epoch"], ra["best"]) == (rb["best_epoch"], rb["best"])
    assert not (b / resume.STATE).exists()                  # removed when the run finished


REAL_STEP = run_module.train_step
REAL_CLEAR = resume.clear


def _interrupt_at_step(monkeypatch, step: int):
    """Ctrl-C arrives during optimisation step ``step`` (1-based, counted over epochs) of
    the next run; ``monkeypatch.setattr(run_module, "train_step", REAL_STEP)`` ends it."""
    real, calls = REAL_STEP, [0]

    def step_or_interrupt(*args, **kwargs):
        calls[0] += 1
        if calls[0] == step:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(run_module, "train_step", step_or_interrupt)


def _cli_args(store, runs: Path, epochs: int = EPOCHS) -> list[str]:
    args = ["train", "--features", str(store), "--out", str(runs), "--epochs", str(epochs)]
    return args + [a for k, v in SETTINGS.items() if k != "epochs"
                   for a in ("--set", f"{k}={v}")]


def test_ctrl_c_mid_epoch_then_the_same_command_resumes_to_the_same_run(
        reference, synthetic_store, tmp_path, monkeypatch, step_losses, caplog):
    ref, ref_losses, steps = reference
    runs = tmp_path / "runs"
    _interrupt_at_step(monkeypatch, 2 * steps + 2)                      # inside epoch 3
    stopped = CliRunner().invoke(cli, _cli_args(synthetic_store, runs))
    assert stopped.exit_code == 130, stopped.output
    (run,) = [d for d in runs.iterdir() if d.is_dir()]
    assert f"interrupted: {run}: epochs 1-2 of {EPOCHS} are saved in resume.pt; the same " \
           "command resumes from epoch 3" in stopped.output
    assert resume.saved_epoch(run) == 2 and not (run / "result.json").exists()
    assert len(pd.read_csv(run / "metrics.csv")) == 2
    monkeypatch.setattr(run_module, "train_step", REAL_STEP)
    caplog.set_level(logging.INFO, logger="pipeline")
    again = CliRunner().invoke(cli, _cli_args(synthetic_store, runs))
    assert again.exit_code == 0, again.output
    assert f"resuming {run} from epoch 3 of {EPOCHS}" in caplog.text
    assert_same_run(ref.run_dir, run)
    assert step_losses == [ref_losses]                                  # loss.png's steps
    assert json.loads((run / "result.json").read_text())["resumed_after_epochs"] == [2]


def test_crash_after_the_state_before_the_best_checkpoint_is_repaired(
        reference, synthetic_store, tmp_path, monkeypatch, step_losses):
    """The state of the best epoch is saved, then the process dies before its checkpoint
    (and metrics.csv row) are written: resuming writes them from the state."""
    ref, ref_losses, _ = reference
    real = run_module.save_checkpoint

    def die_on_best(model, run_config, out_dir):
        if run_config["best_epoch"] == ref.best_epoch:
            raise KeyboardInterrupt
        return real(model, run_config, out_dir)
    monkeypatch.setattr(run_module, "save_checkpoint", die_on_best)
    config = run_config(synthetic_store)
    saved = (f"epoch 1 of {EPOCHS}" if ref.best_epoch == 1 else
             f"epochs 1-{ref.best_epoch} of {EPOCHS}")
    with pytest.raises(KeyboardInterrupt, match=saved):
        train_run(synthetic_store, config, tmp_path / "run", progress=False)
    monkeypatch.setattr(run_module, "save_checkpoint", real)
    train_run(synthetic_store, config, tmp_path / "run", progress=False)
    assert_same_run(ref.run_dir, tmp_path / "run")
    assert step_losses == [ref_losses]


def test_interrupted_twice_then_finished_by_the_dask_task(reference, synthetic_store,
                                                          tmp_path, monkeypatch):
    """The sweep path: the task a Dask worker runs (also when the scheduler reschedules it
    after its worker died) resumes the run, here after Ctrl-C and then a full disk."""
    ref, _, steps = reference
    config = run_config(synthetic_store)
    (spec,) = plan_runs(config, synthetic_store, tmp_path / "runs")
    _interrupt_at_step(monkeypatch, steps + 1)                          # in epoch 2
    with pytest.raises(KeyboardInterrupt, match=f"epoch 1 of {EPOCHS} is saved"):
        train_run(synthetic_store, config, spec.run_dir, progress=False)
    monkeypatch.setattr(run_module, "train_step", REAL_STEP)
    real_save, saves = resume.torch.save, []

    def disk_full_at_epoch_3(state, path):
        saves.append(state["progress"]["epoch"])
        if state["progress"]["epoch"] == 3:
            with open(path, "wb") as f:
                f.write(b"half a state")                                # then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(state, path)
    monkeypatch.setattr(resume.torch, "save", disk_full_at_epoch_3)
    with pytest.raises(UserError) as err:
        train_run(synthetic_store, config, spec.run_dir, progress=False)
    message = str(err.value)
    assert message.startswith(f"{spec.run_dir}/resume.pt: cannot write it: no space left on "
                              "device") and "\n" not in message
    # what is kept and how to go on is the stage's line (tests/test_disk_errors.py)
    assert saves == [2, 3] and not list(spec.run_dir.glob("*.tmp"))
    monkeypatch.setattr(resume.torch, "save", real_save)
    assert resume.saved_epoch(spec.run_dir) == 2
    result = _run_task(str(synthetic_store), config.to_dict(), str(spec.run_dir), None)
    assert result["resumed_after_epochs"] == [1, 2]
    assert_same_run(ref.run_dir, spec.run_dir)


def _pipeline(args: list[str], cwd: Path, stderr) -> subprocess.Popen:
    """``python -m pipeline ARGS`` in a fresh process, torch on as many threads as here."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr)


def test_kill_9_of_pipeline_train_then_the_same_command_resumes(synthetic_store, tmp_path):
    """Killed, resumed and uninterrupted runs are each a fresh `python -m pipeline train`:
    compared bitwise with each other, not with this long-lived test process (whose earlier
    tests may leave float settings that change the last bits of a sum)."""
    runs, log, epochs = tmp_path / "runs", tmp_path / "stderr.txt", 3
    args = _cli_args(synthetic_store, runs, epochs)
    with open(log, "wb") as err:
        proc = _pipeline(args, tmp_path, err)
        deadline = time.monotonic() + 120
        while not list(runs.glob(f"*/{resume.STATE}")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no epoch finished in 120 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)                    # mid-epoch, or mid-write of a file
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, log.read_text()
    (run,) = [d for d in runs.iterdir() if d.is_dir()]
    saved = resume.saved_epoch(run)
    assert 1 <= saved < epochs and not (run / "result.json").exists()
    with open(log, "wb") as err:
        assert _pipeline(args, tmp_path, err).wait() == 0, log.read_text()
        reference = _cli_args(synthetic_store, tmp_path / "ref", epochs)
        assert _pipeline(reference, tmp_path, err).wait() == 0, log.read_text()
    assert f"resuming {run} from epoch {saved + 1} of {epochs}" in log.read_text()
    assert_same_run(tmp_path / "ref" / run.name, run)


def test_a_state_of_another_configuration_or_feature_file_is_never_resumed(
        synthetic_store, tmp_path, monkeypatch, caplog):
    short = build_config(overrides={**SETTINGS, "epochs": 2})
    monkeypatch.setattr(resume, "clear", lambda run_dir: None)      # keep the final state
    train_run(synthetic_store, short, tmp_path / "run", progress=False)
    monkeypatch.setattr(resume, "clear", REAL_CLEAR)
    assert resume.saved_epoch(tmp_path / "run") == 2
    (tmp_path / "run" / "result.json").unlink()
    caplog.set_level(logging.WARNING, logger="pipeline")
    other = short.with_overrides({"lr": 5e-4})
    done = train_run(synthetic_store, other, tmp_path / "run", progress=False)
    assert "another configuration or feature file; ignored" in caplog.text
    assert list(done.history["epoch"]) == [1, 2]              # trained, from epoch 1
    assert json.loads((tmp_path / "run" / "result.json").read_text())[
        "resumed_after_epochs"] == []
    # a state that cannot be read (not one resume.save wrote) is ignored the same way
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / resume.STATE).write_bytes(b"PK\x03\x04 not a state")
    caplog.clear()
    assert resume.restore(tmp_path / "bad", "any", None, None, None, None).epoch == 0
    assert "cannot be read" in caplog.text and "training from epoch 1" in caplog.text
    # what a state is matched on: settings, feature file and its videos, not where the run
    # computes (device, cache, loader workers)
    copy = tmp_path / "copy.h5"
    shutil.copy2(synthetic_store, copy)
    with open_store(synthetic_store) as store:
        split = training_split(store, short.val_fraction, short.val_seed)
    ident = resume.identity(synthetic_store, short, split)
    assert ident == resume.identity(synthetic_store, short.with_overrides(
        {"device": "auto", "cache": "hdf5", "loader_workers": 2}), split)
    assert len({ident, resume.identity(synthetic_store, other, split),
                resume.identity(synthetic_store, short.with_overrides({"seed": 1}), split),
                resume.identity(copy, short, split),
                resume.identity(synthetic_store, short, training_split_without_one(split))}) == 5
    # and the run folder's name already differs for another setting or a changed file
    names = {plan_runs(c, f, tmp_path)[0].name
             for c, f in ((short, synthetic_store), (other, synthetic_store), (short, copy))}
    os.utime(copy, ns=(0, 0))
    names.add(plan_runs(short, copy, tmp_path)[0].name)
    assert len(names) == 4


def training_split_without_one(split):
    """The same split less its first training video (a relabelled store)."""
    from dataclasses import replace

    return replace(split, train=split.train.iloc[1:].reset_index(drop=True))


def test_a_run_whose_dask_worker_is_killed_resumes_on_the_restarted_worker(
        reference, synthetic_store, tmp_path):
    """kill -9 of the worker process mid-run: the scheduler reschedules the run's task on
    the restarted worker (as for `run_many`'s tasks), and the task resumes the run."""
    from distributed import Client, LocalCluster

    ref, _, _ = reference
    config = run_config(synthetic_store)
    (spec,) = plan_runs(config, synthetic_store, tmp_path / "runs")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        (pid,) = client.run(os.getpid).values()
        future = client.submit(_run_task, str(synthetic_store), config.to_dict(),
                               str(spec.run_dir), torch.get_num_threads(),   # same sums as here
                               key=f"train-{spec.name}", pure=False)
        deadline = time.monotonic() + 120
        while not (spec.run_dir / resume.STATE).exists():
            assert time.monotonic() < deadline and not future.done(), "no epoch finished"
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        result = future.result(timeout=300)
    assert result["resumed_after_epochs"] and result["resumed_after_epochs"][0] >= 1
    assert_same_run(ref.run_dir, spec.run_dir)
