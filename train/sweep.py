"""Many runs at once: seeds x a parameter grid as Dask futures, gathered into summary.csv.

Each run is one task ``_run_task(features, config, run_dir)`` that receives paths, never
arrays. A run is idempotent: its folder name is derived from its full configuration, the
store's identity and this package's version, and a folder with ``result.json`` is returned
as is (:func:`reuse_or_train`, the one place that decides), so a retried or re-submitted run
never trains twice, while the same command after an upgrade trains anew. A task that raises
is retried (``retries``); a worker that dies has its task rescheduled by the scheduler
(Dask's ``allowed-failures``).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import features
from features.errors import UserError, first_line
from features.progress import Progress
from features.safe_write import atomic_write
from features.store import store_identity

from .config import TrainConfig
from .run import train_run
from .rundir import RESULT, SUMMARY, WEIGHTS
from .windows import MEMORY_SHARE

log = logging.getLogger("pipeline")


def package_version() -> str:
    """This project's installed version (pyproject's ``version``), part of every run hash."""
    return features.__version__


@dataclass
class RunSpec:
    name: str
    config: TrainConfig
    varied: dict                  # the grid values of this run (not the seed)
    run_dir: Path


def _slug(value) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]", "-", str(value))


def run_name(config: TrainConfig, varied: dict, features: str | Path) -> str:
    """``<preset>_<key>=<value>..._seed<S>_<hash>``; the hash covers the config, the store
    and the package version (a run of an earlier version is not reused)."""
    digest = hashlib.sha1((json.dumps(config.to_dict(), sort_keys=True, default=str)
                           + store_identity(features) + package_version()).encode()
                          ).hexdigest()[:8]
    parts = [config.preset or "custom"] + [f"{k}={_slug(v)}" for k, v in varied.items()]
    return "_".join(parts + [f"seed{config.seed}", digest])


def plan_runs(base: TrainConfig, features, runs_dir, seeds=None, grid=None) -> list[RunSpec]:
    """One spec per (grid point, seed), in grid order then seed order."""
    grid = grid or {}
    seeds = list(seeds) if seeds else [base.seed]
    specs = []
    for values in itertools.product(*grid.values()):
        varied = dict(zip(grid, values))
        for seed in seeds:
            config = base.with_overrides({**varied, "seed": seed})
            name = run_name(config, varied, features)
            specs.append(RunSpec(name, config, varied, Path(runs_dir) / name))
    return specs


def read_result(run_dir: str | Path) -> dict | None:
    """The finished run's result.json, None when the run has not finished."""
    path = Path(run_dir) / RESULT
    if not path.exists():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a result of this tool ({first_line(err)}); "
                        "delete the file to train this run again") from None
    return body


def finished_run(run_dir: str | Path, announce: bool = True) -> dict | None:
    """The result of a run that has finished (marked ``skipped``), saying so in one line;
    None when it has not."""
    done = read_result(run_dir)
    if done is None:
        return None
    if announce:
        log.info("reusing finished run %s (same settings, features and version %s); delete "
                 "it or change a setting to train again", run_dir, package_version())
    return {**done, "skipped": True}


def reuse_or_train(features, config: TrainConfig, run_dir: str | Path, progress: bool,
                   memory_share: float = MEMORY_SHARE, announce: bool = True, split=None) -> dict:
    """Reuse a finished run or train it: the result of ``run_dir``, trained (or resumed)
    first when it has not finished. Both a single run here and a Dask task call this
    (``split``: the run's split, already read and checked by the caller)."""
    done = finished_run(run_dir, announce)
    if done is not None:
        return done
    train_run(features, config, run_dir, progress=progress, memory_share=memory_share,
              split=split)
    return read_result(run_dir)


def _pick_device(device: str) -> str:
    """On a worker with several GPUs, spread runs over them by worker name."""
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        from distributed import get_worker

        name = get_worker().name
        index = name if isinstance(name, int) else int(hashlib.sha1(str(name).encode())
                                                        .hexdigest(), 16)
        return f"cuda:{index % torch.cuda.device_count()}"
    return device


def _run_task(features: str, config: dict, run_dir: str, threads: int | None,
              memory_share: float = MEMORY_SHARE) -> dict:
    """Runs on a Dask worker: train one run (or return its finished result, announced by
    the caller before submitting)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    config = TrainConfig(**{**config, "device": _pick_device(config["device"])})
    return reuse_or_train(features, config, run_dir, progress=False,
                          memory_share=memory_share, announce=False)


def _cluster(n_runs: int, n_workers: int | None):
    """A LocalCluster sized to the machine: one worker per GPU, else per core."""
    import dask
    import torch
    from distributed import LocalCluster

    cores = os.cpu_count() or 1
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_workers is None:
        n_workers = max(1, min(n_runs, gpus or cores))
    threads = max(1, cores // n_workers)
    # workers that may start DataLoader processes must not be daemonic; Dask's own INFO
    # lines only with `pipeline -v`
    level = "info" if log.isEnabledFor(logging.DEBUG) else "warning"
    logging.getLogger("distributed").setLevel(level.upper())
    with dask.config.set({"distributed.worker.daemon": False,
                          "logging": {"distributed": level}}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    return cluster, threads


def _workers_per_host(client) -> int:
    """The largest number of workers on one machine of the cluster (at least 1)."""
    hosts = [w.get("host") for w in client.scheduler_info().get("workers", {}).values()]
    return max([hosts.count(h) for h in set(hosts)] or [1])


def run_many(features, specs: list[RunSpec], scheduler: str | None = None,
             n_workers: int | None = None, retries: int = 1, progress: bool = True) -> list[dict]:
    """Run ``specs`` as Dask futures; one result dict per spec (``error`` set on failure).

    ``features``: the store of every run, or a list with one store per spec."""
    from distributed import Client, as_completed

    cluster, threads = (None, None) if scheduler else _cluster(len(specs), n_workers)
    client = Client(scheduler) if scheduler else Client(cluster)
    results = {}
    try:
        share = MEMORY_SHARE / _workers_per_host(client)     # runs on one machine share its RAM
        stores = features if isinstance(features, list) else [features] * len(specs)
        futures = {client.submit(_run_task, str(Path(f).resolve()),
                                 s.config.to_dict(), str(s.run_dir.resolve()), threads, share,
                                 key=f"train-{s.name}", retries=retries, pure=False): s
                   for f, s in zip(stores, specs)}
        bar = Progress(len(specs), "runs", "run", None if progress else False)
        for future in as_completed(futures):
            spec = futures[future]
            try:
                results[spec.name] = future.result()
            except Exception as err:                     # the run failed after its retries
                log.error("run %s failed: %s", spec.name, err)
                results[spec.name] = {"error": f"{type(err).__name__}: {err}"}
            bar.update(1)
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return [results[s.name] for s in specs]


def summary_rows(specs: list[RunSpec], results: list[dict], features) -> pd.DataFrame:
    rows = []
    for spec, res in zip(specs, results):
        best = (res or {}).get("best") or {}
        select = (res or {}).get("select_metric")
        row = {"run": spec.name, "run_dir": spec.name, "features": str(Path(features).resolve()),
               "preset": spec.config.preset, "seed": spec.config.seed, **spec.varied,
               "status": "failed" if res.get("error") else "ok", "error": res.get("error", ""),
               "best_epoch": res.get("best_epoch"), "select_metric": select,
               "select_value": best.get(select) if select else None,
               **{f"val_{k}": v for k, v in best.items()},
               "seconds": res.get("seconds"),
               "checkpoint": f"{spec.name}/{WEIGHTS}" if not res.get("error")
               else ""}                     # run_dir and checkpoint: relative to runs/
        rows.append(row)
    return pd.DataFrame(rows)


def write_summary(runs_dir: str | Path, new: pd.DataFrame) -> pd.DataFrame:
    """Merge ``new`` rows into ``runs_dir/summary.csv`` (same run name: replaced) and mark the
    best run among the finished runs on the same store with the same selection metric."""
    path = Path(runs_dir) / SUMMARY
    table, old_best = new, None
    if path.exists():
        old = pd.read_csv(path)
        old_best = set(old.loc[old["best"].astype(str).str.lower() == "true", "run"])
        table = pd.concat([old[~old["run"].isin(new["run"])], new], ignore_index=True)
    table["best"] = False
    ok = new[new["status"] == "ok"]
    if len(ok):
        ref = ok.iloc[0]
        pool = table[(table["status"] == "ok") & (table["features"] == ref["features"])
                     & (table["select_metric"] == ref["select_metric"])
                     & table["select_value"].notna()]
        if len(pool):
            table.loc[pd.to_numeric(pool["select_value"]).idxmax(), "best"] = True
        elif len(new) == 1:              # a single run without validation: the only choice
            table.loc[table["run"] == ref["run"], "best"] = True
    elif old_best:                       # nothing new finished: keep the earlier choice
        table["best"] = table["run"].isin(old_best)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
    return table
