"""Stage two's front door: ``train(...)`` = one run in this process, or many runs on Dask.

Used by ``pipeline train``; every option of the command is an argument here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features import paths
from features.errors import UserError
from features.safe_write import storage_errors
from features.store import open_store

from . import resume
from .config import FIELDS, TrainConfig, build_config, coerce, read_config_file, read_value
from .presets import CUSTOM, PAPER_PRESETS, custom_schedule
from .protocol import run_split, steps_per_epoch
from .run import check_store
from .rundir import SUMMARY
from .splits import Split
from .sweep import (finished_run, plan_runs, read_result, reuse_or_train, run_many,
                    summary_rows, write_summary)

log = logging.getLogger("pipeline")


@dataclass
class TrainSummary:
    table: pd.DataFrame            # one row per run of this call (summary.csv columns)
    best_run: Path | None          # the run marked best in summary.csv
    summary_path: Path

    def format(self) -> str:
        cols = [c for c in self.table.columns
                if c in ("run", "seed", "status", "best_epoch", "seconds", "best")
                or c.startswith("val_") or c in self.table.attrs.get("varied", [])]
        lines = [self.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}")]
        lines.append(f"summary: {self.summary_path}")
        lines.append(f"best run: {self.best_run}" if self.best_run else
                     "best run: none (runs without validation, e.g. --protocol reference, are "
                     "not ranked against each other; score one with --run RUN_DIR)")
        return "\n".join(lines)


def parse_seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(s) for s in str(text).split(",") if s.strip() != ""]
    except ValueError:
        raise UserError(f"--seeds {text}: expected integers separated by commas, e.g. 0,1,2") \
            from None


def parse_sweep(items) -> dict:
    """``["lr=1e-4,1e-3", "depth=1,2"]`` -> ``{"lr": [1e-4, 1e-3], "depth": [1, 2]}``."""
    grid = {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--sweep {item}: expected key=v1,v2,... e.g. --sweep lr=1e-5,1e-4")
        key, values = item.split("=", 1)
        key = key.strip()
        if key not in FIELDS or key == "seed":
            raise UserError(f"--sweep {item}: unknown setting {key!r} (use --seeds for seeds); "
                            f"valid keys: {', '.join(k for k in FIELDS if k != 'seed')}")
        grid[key] = [coerce(key, read_value(key, v, f"--sweep {item}"), f"--sweep {item}")
                     for v in values.split(",") if v.strip()]
        if not grid[key]:
            raise UserError(f"--sweep {item}: no values for {key}; give at least one, e.g. "
                            f"--sweep {key}=V1,V2")
    return grid


def _infer_preset(store, protocol: str) -> str | None:
    """The store's dataset when it is one of the paper's; else the custom preset, or, under
    the reference protocol (the method exactly as published), none (UCF-Crime's numbers
    without the class check)."""
    dataset = store.attrs.get("dataset")
    if dataset in PAPER_PRESETS:
        return dataset
    return None if protocol == "reference" else CUSTOM


def resolve_config(features, preset: str | None = None, config_file=None,
                   settings: dict | None = None) -> TrainConfig:
    """The configuration :func:`train` runs with: ``preset`` (default: see
    :func:`_infer_preset`), the config file and the settings. The custom preset's epochs
    are sized to the store's training split (after carving validation) unless the settings
    fix them; its warm-up and validation interval follow the epochs."""
    return _resolve(features, preset, config_file, settings, check=False)[0]


def _resolve(features, preset, config_file, settings,
             check: bool) -> tuple[TrainConfig, Split | None]:
    """(config, the run's split) from one opening of the store; with ``check``, also the
    label, preset and text-model checks of a run (one clear line before any run starts).
    The split is read only when needed (``check``, or sizing the custom preset)."""
    overrides = dict(settings or {})
    config = build_config(preset, config_file, overrides)    # settings checked first
    with open_store(features) as store:                      # opened once for every question
        if preset is None and "preset" not in overrides:
            preset = _infer_preset(store, config.protocol)
            if preset:
                log.info("using preset %s (%s)", preset, "the store's dataset"
                         if preset != CUSTOM else "the store's dataset is not a paper preset")
                config = build_config(preset, config_file, overrides)
        split = run_split(store, config) if check or config.preset == CUSTOM else None
        if check:
            check_store(store, config, split)
    if config.preset != CUSTOM:
        return config, split
    abnormal = int((split.train["class_name"] != split.normal_class).sum())
    steps = config.steps_per_epoch or steps_per_epoch(
        abnormal, len(split.train) - abnormal, config.batch_size // 2, config.protocol)
    given = {**(read_config_file(config_file) if config_file else {}), **overrides}
    sized = custom_schedule(steps, config.epochs if "epochs" in given else None)
    log.info("custom preset: %d steps per epoch -> %d epochs, lr %g", steps, sized["epochs"],
             config.lr)
    return build_config(config.preset, config_file, overrides, sized=sized), split


def train(features=None, preset: str | None = None, config_file=None,
          settings: dict | None = None, epochs: int | None = None, seed: int | None = None,
          seeds=None, sweep: dict | None = None, scheduler: str | None = None, out=None,
          device: str | None = None, workers: int | None = None, retries: int = 1,
          progress: bool = True, protocol: str | None = None) -> TrainSummary:
    """Train one run (``seed``) or many (``seeds`` x ``sweep`` grid on Dask) from ``features``.

    Runs go to ``out/<run name>/``; ``out/summary.csv`` gets one row per run with its best
    validation metrics and marks the best run. ``protocol``: ``validated`` (default) or
    ``reference`` (:mod:`train.protocol`).
    """
    features = Path(features or paths.default_features())
    out = paths.writable_dir(out or paths.default_runs(), "--out" if out else None)
    overrides = dict(settings or {})
    for key, value in (("epochs", epochs), ("seed", seed), ("device", device),
                       ("protocol", protocol)):
        if value is not None:
            overrides[key] = value
    config, split = _resolve(features, preset, config_file, overrides, check=True)
    grid = sweep or {}
    specs = plan_runs(config, features, out, seeds, grid)
    if len(specs) == 1 and not scheduler:             # here: the split checked above trains
        same = specs[0].config == config
        with _disk_full(specs[0].run_dir):
            results = [reuse_or_train(features, specs[0].config, specs[0].run_dir, progress,
                                      split=split if same else None)]
    else:
        log.info("%d runs on Dask (%s)", len(specs), scheduler or "LocalCluster")
        for spec in specs:
            saved = resume.saved_epoch(spec.run_dir) if finished_run(spec.run_dir) is None else 0
            if saved:
                log.info("resuming %s from epoch %d of %d", spec.run_dir, saved + 1,
                         spec.config.epochs)
        try:
            results = run_many(features, specs, scheduler, workers, retries, progress)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(_interrupted(specs)) from None
    table = summary_rows(specs, results, features)
    with _disk_full(out / SUMMARY):
        merged = write_summary(out, table)
    mine = merged[merged["run"].isin(table["run"])].reset_index(drop=True)
    mine.attrs["varied"] = list(grid)
    best = merged[merged["best"]]
    best_run = out / best.iloc[0]["run_dir"] if len(best) else None
    return TrainSummary(mine, best_run, out / SUMMARY)


def _disk_full(where: Path):
    """A full or read-only disk while a run folder (or the summary) is written: one line
    naming it; files are replaced atomically, so the last saved epoch stays resumable."""
    return storage_errors(where, "write the training run",
                          "train into another --out, or run the same command again once there "
                          "is room: it resumes from the last saved epoch")


def _interrupted(specs) -> str:
    """What Ctrl-C during many runs keeps: finished runs and the saved epochs of the others."""
    finished = {s.name for s in specs if read_result(s.run_dir) is not None}
    saved = {s.name: resume.saved_epoch(s.run_dir) for s in specs if s.name not in finished}
    started = {k: v for k, v in saved.items() if v}
    parts = [f"{len(finished)} of {len(specs)} runs finished"]
    if started:
        parts.append(f"{len(started)} have saved epochs ("
                     + ", ".join(f"{k}: {v}" for k, v in list(started.items())[:3])
                     + (", ..." if len(started) > 3 else "") + ")")
    return ("; ".join(parts) + "; the same command keeps the finished runs and resumes the "
            "others from their last saved epoch")
