"""One training run: ``train_run(features, config, out_dir) -> RunResult``.

Reads only the HDF5 store (no video is decoded, no image encoded). Writes into ``out_dir``:
``model.safetensors`` + ``config.json`` (the checkpoint with the best validation metric,
rewritten whenever it improves), ``metrics.csv`` (one row per epoch, rewritten every epoch),
``loss.png`` and, last, ``result.json``, which marks the run complete.
"""
from __future__ import annotations

import errno
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from features.clip_loader import resolve_device
from features.errors import UserError
from features.metrics import json_safe
from features.schema import utc_now
from features.progress import Progress
from features.store import atomic_write, open_store

from . import resume
from .baselines import (baselines_line, format_baselines, residual_contrasts,
                        split_baselines)
from .config import TrainConfig
from .diagnose import chance_warning
from .model import (TERMS, AnomalyCLIP, PromptLearner, anomaly_clip_loss, class_contrasts,
                    data_shift, load_text_tower, normal_centroid)
from .presets import check_classes, get_preset
from .protocol import reference_lr_factor, run_split, steps_per_epoch
from .report import plot_losses
from .rundir import LOSS_PLOT, METRICS, RESULT, STATE, save_checkpoint
from .splits import Split
from .validate import metric_suffix, uses_video_labels, validation_metrics
from .windows import (MEMORY_SHARE, BalancedBatches, HDF5Rows, MemoryRows, WindowDataset,
                      fits_in_memory, rows_bytes, window_loader)

log = logging.getLogger("pipeline")
LAST_EPOCH = "last_epoch"          # select_metric of a run without validation: no selection
_CANNOT_WRITE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


@dataclass
class RunResult:
    run_dir: Path
    best_epoch: int | None          # None when there was no validation
    best: dict                      # validation metrics of the kept checkpoint
    history: pd.DataFrame           # metrics.csv
    config: dict                    # TrainConfig fields
    seconds: float

    def summary(self) -> str:
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in self.best.items() if v == v)
        return (f"{self.run_dir}: best epoch {self.best_epoch}  {metrics or 'no validation'}  "
                f"({self.seconds:.0f} s)")


def lr_factor(step: int, steps_per_epoch: int, warmup_epochs: float, epochs: int) -> float:
    """Linear warm-up over ``warmup_epochs`` then cosine decay to 0 at the last step."""
    t = step / steps_per_epoch                                   # epochs done (fractional)
    if t < warmup_epochs:
        return (step + 1) / (warmup_epochs * steps_per_epoch)
    span = max(epochs - warmup_epochs, 1e-12)
    return 0.5 * (1 + math.cos(math.pi * min((t - warmup_epochs) / span, 1.0)))


def check_store(store, config: TrainConfig, split: Split) -> None:
    """The checks of a run before any model loads: the preset's classes, a known text
    model (one clear line on failure)."""
    if config.preset:
        check_classes(get_preset(config.preset), split.class_names, store.path)
    if "model_id" not in store.attrs and not config.text_model:
        raise UserError(f"{store.path}: no model_id attribute, so the CLIP text tower is unknown; "
                        "pass it with --set text_model=ID_OR_PATH")


def select_key(name: str, video_level: bool) -> str:
    """The metric key a ``select_metric`` setting selects on (see train.validate)."""
    if name == "auto":
        return "video_auc" if video_level else "auc"
    return name if name == "video_auc" else name + metric_suffix(video_level)


def initial_model(store, split: Split, config: TrainConfig, device) -> AnomalyCLIP:
    """The untrained model of a run: centroid of the normal training videos, CoOp prompts
    over the store's CLIP text tower (shifted towards the training data's class contrasts
    with ``direction_init`` data / text+data; off the normal manifold with ``residual``:
    train.baselines.residual_contrasts), freshly initialised temporal model (seeded)."""
    model_id = config.text_model or store.attrs["model_id"]
    tower = load_text_tower(model_id, store.attrs.get("model_sha256"), device, store.path)
    if tower.clip.embed_dim != store.embed_dim:
        raise UserError(f"{store.path}: features are {store.embed_dim}-d but the text model "
                        f"{model_id} embeds in {tower.clip.embed_dim}-d; the store must come "
                        "from the same CLIP")
    torch.manual_seed(config.seed)
    normal_ids = list(split.train.loc[split.train["class_name"] == split.normal_class,
                                      "video_id"])
    centroid = normal_centroid(store, normal_ids)
    prompts = PromptLearner(tower, split.class_names, config.n_ctx, config.ctx_init_std)
    if config.direction_init != "text":
        anomaly = [c for c in split.class_names if c != split.normal_class]
        videos = dict(zip(split.train["video_id"], split.train["class_name"]))
        if config.direction_init == "residual":
            contrasts = torch.from_numpy(residual_contrasts(
                lambda v: store.rows(v), videos, anomaly, split.normal_class))
        else:
            contrasts = class_contrasts(store, videos, anomaly, split.normal_class)
        with torch.no_grad():
            prompts.add_shift(data_shift(prompts(), centroid.to(prompts.ctx.device),
                                         contrasts.to(prompts.ctx.device), split.normal_index,
                                         keep_text=config.direction_init == "text+data"))
    return AnomalyCLIP(split.class_names, split.normal_index, store.embed_dim,
                       config.num_segments, config.seg_length, config.width, config.depth,
                       config.heads, config.concat_selector, centroid, prompts,
                       selector_logit=config.selector_logit).to(device)


def train_run(features: str | Path, config: TrainConfig, out_dir: str | Path,
              progress: bool = True, memory_share: float = MEMORY_SHARE,
              split: Split | None = None) -> RunResult:
    """Train one AnomalyCLIP on the store ``features``; see the module docstring for outputs.

    ``memory_share``: with ``cache=auto``, the windows are cached in RAM when the training
    and validation rows take at most this share of physical memory (runs sharing a machine
    pass their part of it). ``split``: the run's split when the caller has read and
    checked it (:func:`check_store`) from this store already.
    """
    t0 = time.time()
    out_dir = Path(out_dir)
    device = resolve_device(config.device)
    with open_store(features) as store:
        if split is None:
            split = run_split(store, config)
            check_store(store, config, split)
        model = initial_model(store, split, config, device)
        train_src, val_src = make_sources(store, split, config, progress, memory_share)
        val_frames = {v: store.frame_index(v) for v in split.val["video_id"]}
        store_info = {"features": str(Path(features).resolve()),
                      "stride": store.attrs.get("stride"),
                      "model_id": config.text_model or store.attrs["model_id"],
                      "model_sha256": store.attrs.get("model_sha256"),
                      "embed_dim": store.embed_dim, "dataset": store.attrs.get("dataset"),
                      "baselines": split_baselines(store, split)}
        if store_info["baselines"]:
            log.info("%s: training-free baselines on the validation videos: %s", out_dir.name,
                     format_baselines(store_info["baselines"]))
    ident = resume.identity(features, config, split)
    try:
        result = _fit(model, split, train_src, val_src, val_frames, config, out_dir, device,
                      store_info, progress, t0, ident)
        if result.best and (line := baselines_line(result.best, store_info["baselines"])):
            log.warning("%s: %s", out_dir.name, line)
        return result
    except KeyboardInterrupt:           # Ctrl-C: say what is kept and what comes next
        raise KeyboardInterrupt(f"{out_dir}: {resume.what_next(out_dir, config.epochs)}") \
            from None
    except OSError as err:              # the run folder filled up or became read-only
        if err.errno not in _CANNOT_WRITE:
            raise
        raise UserError(f"{out_dir}: cannot write there ({err.strerror}); make room or fix "
                        f"the folder: {resume.what_next(out_dir, config.epochs)}") from None


def make_sources(store, split: Split, config: TrainConfig, progress: bool = False,
                 memory_share: float = MEMORY_SHARE):
    """(train, val) row sources: in RAM (cache=memory, or auto when it fits) or HDF5."""
    train_ids, val_ids = list(split.train["video_id"]), list(split.val["video_id"])
    mode = config.cache
    if mode == "auto":
        size = rows_bytes(store, train_ids + val_ids)
        mode = "memory" if fits_in_memory(size, memory_share) else "hdf5"
        log.debug("cache=auto: %.2f GiB of rows -> %s", size / 2**30, mode)
    if mode == "hdf5":
        return HDF5Rows(store.path, train_ids), HDF5Rows(store.path, val_ids)
    with Progress(len(train_ids) + len(val_ids), "caching features", "video",
                  None if progress else False, leave=False) as bar:
        return MemoryRows(store, train_ids, bar), MemoryRows(store, val_ids, bar)


def make_loader(split: Split, source, config: TrainConfig, device: torch.device):
    """DataLoader of balanced window batches over the training videos, and its sampler."""
    train = split.train
    class_index = [split.class_names.index(c) for c in train["class_name"]]
    abnormal = [i for i, c in enumerate(class_index) if c != split.normal_index]
    normal = [i for i, c in enumerate(class_index) if c == split.normal_index]
    half = config.batch_size // 2
    steps = config.steps_per_epoch or steps_per_epoch(len(abnormal), len(normal), half,
                                                      config.protocol)
    workers = config.loader_workers
    if workers is None:
        workers = 4 if device.type == "cuda" and isinstance(source, HDF5Rows) else 0
    dataset = WindowDataset(source, list(train["n_rows"].astype(int)), class_index,
                            config.num_segments, config.seg_length)
    batches = BalancedBatches(abnormal, normal, half, steps, config.seed)
    return window_loader(dataset, batches, workers, pin_memory=device.type == "cuda"), batches


def train_step(model: AnomalyCLIP, optimizer, schedule, x: torch.Tensor, y: torch.Tensor,
               config: TrainConfig, generator: torch.Generator,
               select_by: str = "selector") -> dict:
    """One optimisation step on a batch: x (B, N, L, D) windows, y (B,) class indices."""
    device = model.centroid.device
    x = x.to(device, non_blocking=True).float()                      # (B, N, L, D) fp32
    y = y.to(device)
    out = model(x)
    loss, terms = anomaly_clip_loss(out, y, model.normal_index, config, generator, select_by)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    schedule.step()
    return terms


def make_optimizer(model: AnomalyCLIP, config: TrainConfig, steps: int):
    """AdamW on the trainable parameters; linear warm-up then cosine decay, per step (or per
    epoch under the reference protocol: train.protocol). ``steps``: steps per epoch."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.protocol == "reference":
        def factor(s):
            return reference_lr_factor(s // steps, config.warmup_epochs, config.epochs)
    else:
        def factor(s):
            return lr_factor(s, steps, config.warmup_epochs, config.epochs)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _fit(model: AnomalyCLIP, split: Split, train_src, val_src, val_frames: dict,
         config: TrainConfig, out_dir: Path, device: torch.device, store_info: dict,
         progress: bool, t0: float, ident: str) -> RunResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT).unlink(missing_ok=True)
    loader, batches = make_loader(split, train_src, config, device)
    steps = len(batches)
    optimizer, schedule = make_optimizer(model, config, steps)
    generator = torch.Generator().manual_seed(config.seed)
    video_level = uses_video_labels(split.val, split.normal_class) if len(split.val) else False
    key = select_key(config.select_metric, video_level) if len(split.val) else LAST_EPOCH
    run_config = {
        **store_info, "class_names": split.class_names, "normal_class": split.normal_class,
        "normal_index": split.normal_index, "num_segments": config.num_segments,
        "seg_length": config.seg_length, "width": config.width, "depth": config.depth,
        "heads": config.heads, "concat_selector": config.concat_selector,
        "preset": config.preset, "seed": config.seed, "config": config.to_dict(),
        "protocol": config.protocol,
        "val_source": split.val_source, "val_videos": list(split.val["video_id"]),
        "val_labels": "video-level" if video_level else "intervals",
        "select_metric": key, "torch_version": torch.__version__, "device": str(device),
    }
    done = resume.restore(out_dir, ident, model, optimizer, schedule, generator)
    history, step_losses = done.history, done.step_losses
    best_value, best_epoch, best, last_val = done.best_value, done.best_epoch, done.best, \
        done.last_val
    t0 -= done.seconds                          # time_s counts the earlier processes too
    diagnosed = done.epoch > config.warmup_epochs   # judged by the process that ran warm-up
    if done.epoch:
        log.info("resuming %s from epoch %d of %d (epochs 1-%d restored from %s)", out_dir,
                 done.epoch + 1, config.epochs, done.epoch, STATE)
        _write_history(history, out_dir)        # a later epoch's row may have been written
        if best_epoch == done.epoch:            # and this epoch's checkpoint may not
            save_checkpoint(model, {**run_config, "best_epoch": best_epoch,
                                    "metrics": json_safe(best)}, out_dir)
    # a bar of steps on a terminal, one line per epoch elsewhere (features/progress.py)
    bar = Progress(config.epochs * steps, out_dir.name, "step", None if progress else False,
                   every=0, initial=done.epoch * steps)
    for epoch in range(done.epoch + 1, config.epochs + 1):
        model.train()
        batches.set_epoch(epoch)
        sums = dict.fromkeys(("loss",) + TERMS, 0.0)
        lr = optimizer.param_groups[0]["lr"]          # at the epoch's first step
        select_by = config.select_by if epoch > config.warmup_epochs else "selector"
        for x, y in loader:
            terms = train_step(model, optimizer, schedule, x, y, config, generator, select_by)
            value = sum(terms.values())
            step_losses.append(value)
            sums["loss"] += value
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}", **last_val)
        row = {"epoch": epoch, "step": epoch * steps, "lr": lr,
               **{k: v / steps for k, v in sums.items()}}
        improved = False
        if len(split.val) and (epoch % config.val_every == 0 or epoch == config.epochs):
            model.eval()
            metrics = validation_metrics(model, val_src, split.val, val_frames,
                                         split.class_names, split.normal_class, device)
            row.update({f"val_{k}": v for k, v in metrics.items()})
            score = metrics[key]
            last_val = {f"val_{key}": f"{score:.3f}"}
            if not diagnosed and (epoch > config.warmup_epochs or epoch == config.epochs):
                diagnosed = True                     # judged once, at the end of warm-up
                warning = chance_warning(metrics, epoch, config)
                if warning:
                    log.warning("%s: %s", out_dir.name, warning)
            if math.isnan(score) and best_epoch is None:
                log.warning("validation %s is undefined (one class only among the validation "
                            "videos): keeping the latest epoch", key)
            if math.isnan(best_value) or score >= best_value or best_epoch is None:
                # ties go to the later epoch; an undefined metric keeps the latest
                best_value, best_epoch, best, improved = score, epoch, metrics, True
        row["time_s"] = round(time.time() - t0, 2)
        history.append(row)
        bar.note(epoch=f"{epoch}/{config.epochs}", loss=f"{row['loss']:.4f}", lr=f"{lr:.2e}",
                 **last_val)
        # the epoch's state first: every file written after it is rewritten on resume
        resume.save(out_dir, ident, resume.RunProgress(
            epoch, history, step_losses, best_value, best_epoch, best, last_val,
            seconds=time.time() - t0, resumed_at=done.resumed_at),
            model, optimizer, schedule, generator)
        _write_history(history, out_dir)
        if improved:
            save_checkpoint(model, {**run_config, "best_epoch": epoch,
                                    "metrics": json_safe(metrics)}, out_dir)
    bar.close()
    if not len(split.val):                       # no validation: keep the last epoch
        if config.protocol == "reference":
            log.info("protocol reference: keeping the last epoch")
        else:
            log.warning("no validation videos: keeping the last epoch (not selected)")
        save_checkpoint(model, {**run_config, "best_epoch": None, "metrics": {}}, out_dir)
    frame = pd.DataFrame(history)
    plot_losses(frame, step_losses, out_dir / LOSS_PLOT, f"val_{key}")
    seconds = time.time() - t0
    result = RunResult(out_dir, best_epoch, best, frame, config.to_dict(), seconds)
    body = {"run_dir": str(out_dir), "best_epoch": best_epoch, "best": json_safe(best),
            "select_metric": key, "seconds": round(seconds, 2),
            "config": config.to_dict(), "features": store_info["features"],
            "baselines": store_info["baselines"], "resumed_after_epochs": done.resumed_at,
            "finished_utc": utc_now()}
    atomic_write(out_dir / RESULT, lambda tmp: tmp.write_text(
        json.dumps(json_safe(body), indent=2, default=str) + "\n"))
    resume.clear(out_dir)
    return result


def _write_history(history: list[dict], out_dir: Path) -> None:
    atomic_write(out_dir / METRICS,
                 lambda tmp: pd.DataFrame(history).to_csv(tmp, index=False))

