"""Resumable training: a run's whole state after each finished epoch, in ``resume.pt``.

An interrupted run (Ctrl-C, kill -9, power loss, a Dask worker lost) started again with the
same configuration on the same feature file continues after its last finished epoch and
ends with the same metrics.csv and weights as a run that was never interrupted: the state
holds everything the next epoch depends on.

    model          every parameter and buffer (BatchNorm statistics, text embeddings T),
                   except the frozen CLIP text tower, which is reloaded from the store's model
    optimizer      AdamW moments and step counts; the lr schedule's position
    RNG streams    the MIL selection generator and torch's global generator (the DataLoader
                   draws from it each epoch), CUDA's too on a GPU. Window sampling needs none:
                   batches and windows are a pure function of (seed, epoch)
    bookkeeping    metrics.csv rows, per-step losses (loss.png), the best epoch and its
                   metrics, training seconds so far, the epochs it was resumed at

The file is written through ``resume.pt.tmp``, fsynced and renamed (features.store), so a
kill at any moment leaves the previous epoch's complete state; it is deleted when the run
finishes (``result.json`` written). It carries an identity (configuration, feature file,
training and validation videos): a state written for anything else is ignored with a
warning, never resumed. Loading uses ``torch.load(weights_only=True)``: tensors and plain
values only, no code.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from features.errors import first_line
from features.safe_write import atomic_write
from features.store import store_identity

from .model import FROZEN_TOWER      # the CLIP text tower: frozen, reloaded, not saved
from .rundir import STATE

log = logging.getLogger("pipeline")
STATE_VERSION = 1
# settings that change where and how fast a run computes, not what: a run may resume with
# other values (e.g. on another GPU of the cluster)
_PLACEMENT = ("device", "cache", "loader_workers")


@dataclass
class RunProgress:
    """What a run has done so far (all of it restored on resume)."""
    epoch: int = 0                                   # last finished epoch (0: none)
    history: list[dict] = field(default_factory=list)         # metrics.csv rows
    step_losses: list[float] = field(default_factory=list)    # loss.png, one per step
    best_value: float = -math.inf
    best_epoch: int | None = None
    best: dict = field(default_factory=dict)         # validation metrics of the best epoch
    last_val: dict = field(default_factory=dict)     # progress-bar postfix
    seconds: float = 0.0                             # training time before this process
    resumed_at: list[int] = field(default_factory=list)       # epochs resumed after


def identity(features, config, split) -> str:
    """Digest of what a run computes: its settings (not placement), the feature file
    (path, size, mtime) and the exact training and validation videos."""
    settings = {k: v for k, v in config.to_dict().items() if k not in _PLACEMENT}
    videos = {name: [[str(r.video_id), str(r.class_name), int(r.n_rows)]
                     for r in rows.itertuples(index=False)]
              for name, rows in (("train", split.train), ("val", split.val))}
    body = json.dumps({"version": STATE_VERSION, "settings": settings,
                       "store": store_identity(features), "videos": videos,
                       "classes": list(split.class_names)}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _trainable_state(model) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()
            if not k.startswith(FROZEN_TOWER)}


def save(run_dir: Path, ident: str, progress: RunProgress, model, optimizer, schedule,
         generator: torch.Generator) -> None:
    """Write the state after ``progress.epoch`` atomically (see the module docstring)."""
    state = {
        "version": STATE_VERSION, "identity": ident, "progress": asdict(progress),
        "model": _trainable_state(model), "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(), "selection_rng": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }
    atomic_write(Path(run_dir) / STATE, lambda tmp: torch.save(state, tmp))


def restore(run_dir: Path, ident: str, model, optimizer, schedule,
            generator: torch.Generator) -> RunProgress:
    """The progress of the run in ``run_dir``, its state loaded into the given objects; a
    fresh RunProgress when there is no state, or one that is unreadable or another run's."""
    path = Path(run_dir) / STATE
    path.with_name(STATE + ".tmp").unlink(missing_ok=True)       # left by a kill mid-write
    if not path.exists():
        return RunProgress()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError("not a resume state of this version")
    except Exception as err:                     # unreadable: nothing in it can be used
        log.warning("%s: cannot be read (%s); training from epoch 1", path,
                    first_line(err))
        return RunProgress()
    if state["identity"] != ident:
        log.warning("%s: saved by a run with another configuration or feature file; "
                    "ignored, training from epoch 1", path)
        return RunProgress()
    expected = {k: v.shape for k, v in model.state_dict().items()
                if not k.startswith(FROZEN_TOWER)}
    if {k: v.shape for k, v in state["model"].items()} != expected:
        log.warning("%s: does not fit this model (saved by another version?); training "
                    "from epoch 1", path)
        return RunProgress()
    model.load_state_dict(state["model"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    generator.set_state(state["selection_rng"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    progress = RunProgress(**state["progress"])
    progress.resumed_at.append(progress.epoch)
    return progress


def clear(run_dir: Path) -> None:
    """The run finished: its resume state is no longer needed."""
    (Path(run_dir) / STATE).unlink(missing_ok=True)


def saved_epoch(run_dir: Path) -> int:
    """The last epoch whose state is saved in ``run_dir`` (0: none)."""
    try:
        state = torch.load(Path(run_dir) / STATE, map_location="cpu", weights_only=True,
                           mmap=True)
        return int(state["progress"]["epoch"])
    except Exception:
        return 0


def what_next(run_dir: Path, epochs: int) -> str:
    """For a run that stopped: what is kept and what the same command does next."""
    done = saved_epoch(run_dir)
    if done == 0:
        return (f"stopped in epoch 1 of {epochs}, before any epoch finished; the same command "
                "starts this run again")
    kept = f"epoch 1 of {epochs} is" if done == 1 else f"epochs 1-{done} of {epochs} are"
    return f"{kept} saved in {STATE}; the same command resumes from epoch {done + 1}"
