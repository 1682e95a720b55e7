"""Stage three's front door: score a split of the feature store, or one new video.

    score_split()                       # the default store, the best run, split "test"
    score_video("clip.mp4")             # extract it with the run's CLIP, score, find intervals

Both write, under ``out`` (default ``pipeline_out/scores/<split>``, and
``pipeline_out/scores/videos/<video name>`` for one video, so a video named ``test.mp4``
never lands in the test split's folder); the files are written aside and moved in whole,
and a re-scoring leaves none of the previous scoring's files behind (evaluate/outputs.py)::

    frame_scores.parquet   one row per native frame (evaluate/tables.py), .csv on request
    videos.csv             one row per video: truth, predicted class, peak score, intervals
    metrics.json           the metric suite (evaluate/summary.py over the definitions of
                           features/metrics.py), or why it was skipped; ``files``: every file of
                           this scoring
    per_class.csv          per anomaly class AUC / AP / video accuracy
    summary.png            ROC and precision-recall curves (when labels are known)
    plots/<video_id>.png   score curve, truth shaded, threshold, class probabilities
    report.html            one self-contained interactive page of all of it (evaluate/report.py)
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from features import paths
from features.clip_loader import resolve_device
from features.errors import UserError
from features.progress import Progress
from features.safe_write import disk_usage, storage_errors
from features.metrics import THRESHOLD, video_class_scores
from features.store import NORMAL_CLASS, SPLITS, FeatureStore, frame_labels, open_store
from train.rundir import CONFIG, find_best_run, load_run

from . import plots, report, tables
from .frame_scores import FrameScores, score_videos
from .intervals import Interval, find_intervals
from .outputs import OutputFolder
from .summary import summarize

log = logging.getLogger("pipeline")
VIDEOS = tables.VIDEOS


@dataclass
class ScoreResult:
    out: Path
    run: Path
    split: str
    frames: pd.DataFrame                       # the per-frame table
    videos: pd.DataFrame                       # one row per video (videos.csv)
    metrics: dict | None                       # None when labels are unknown
    per_class: pd.DataFrame | None
    files: list[Path] = field(default_factory=list)
    plots_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    intervals: dict[str, list[Interval]] = field(default_factory=dict)
    render: Path | None = None
    seconds: float = 0.0
    report: Path | None = None              # report.html

    def summary(self) -> str:
        lines = [f"scored {len(self.videos)} video(s), {len(self.frames):,} frames, with run "
                 f"{self.run} ({self.seconds:.1f} s)"]
        if self.metrics is not None:
            lines += ["", tables.format_metrics(self.metrics, self.per_class), ""]
        for vid, found in self.intervals.items():
            lines.append(f"anomalous intervals in {vid} (p(anomaly) >= {THRESHOLD}):")
            lines += [f"  {iv.format()}" for iv in found] or ["  none"]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"{'wrote':<8} {p}" for p in self.files]
        if self.plots_dir is not None:
            lines.append(f"{'plots':<8} {self.plots_dir}/<video_id>.png")
        if self.render is not None:
            lines.append(f"{'video':<8} {self.render}")
        if self.report is not None:
            lines.append(f"{'report':<8} {self.report}  (open it in a browser)")
        return "\n".join(lines)


# ------------------------------------------------------------------- run and store checks
def load_scoring_run(run, device: str = "auto"):
    """(run folder, model in eval mode, config) of ``run`` (a run folder or a runs folder
    with summary.csv; default: the best run under pipeline_out/runs)."""
    runs = Path(run) if run else paths.default_runs()
    if not runs.exists():
        raise UserError(f"{runs}: no such run folder; train first (`pipeline train`) or pass "
                        "--run RUN_DIR")
    run_dir = find_best_run(runs)
    model, cfg = load_run(run_dir, resolve_device(device))
    return run_dir, model, cfg


def baselines_note(cfg: dict) -> list[str]:
    """[one line]: the run's validation metrics beside the training-free baselines it
    computed at the start of training (config.json ``baselines``); [] when it has none."""
    base, mine = cfg.get("baselines") or {}, cfg.get("metrics") or {}
    if not base:
        return []
    keys = [k for k in ("video_auc", "auc", "auc_videolabel", "video_top1_accuracy")
            if isinstance(mine.get(k), (int, float))]
    shown = ", ".join(f"{k} {mine[k]:.3f}" for k in keys)
    other = ", ".join(f"{k} {v:.3f}" for k, v in base.items() if isinstance(v, (int, float)))
    return [f"validation during training: {shown or 'none'}; training-free baselines on the "
            f"same videos: {other}"]


def check_compatible(store: FeatureStore, cfg: dict, run_dir: Path) -> list[str]:
    """UserError when the store's features cannot be scored by the run; notes otherwise."""
    where = f"{store.path} vs run {run_dir}"
    if store.n_crops:
        raise UserError(f"{store.path}: embeddings have {store.n_crops} crops per row; the "
                        "model scores one crop: re-import with `pipeline import --crop 0`")
    if int(cfg["embed_dim"]) != store.embed_dim:
        raise UserError(f"{where}: features are {store.embed_dim}-d, the run was trained on "
                        f"{cfg['embed_dim']}-d ones; score features of the same CLIP")
    stored, trained = store.attrs.get("model_sha256"), cfg.get("model_sha256")
    if stored and trained and stored != trained:
        raise UserError(
            f"{where}: features come from {store.attrs.get('model_id')} (weights sha256 "
            f"{stored[:12]}...) but the run was trained on features of {cfg.get('model_id')} "
            f"(sha256 {trained[:12]}...); re-extract with --model {cfg.get('model_id')} or "
            "pass a run trained on this store")
    notes = []
    if store.class_names and list(store.class_names) != list(cfg["class_names"]):
        raise UserError(f"{where}: the store's classes {store.class_names} differ from the "
                        f"run's {cfg['class_names']}; score a store labelled like the "
                        "training one, or pass a run trained on these classes")
    if cfg.get("stride") not in (None, store.attrs.get("stride")):
        notes.append(f"the run was trained at stride {cfg['stride']}, these features are at "
                     f"stride {store.attrs.get('stride')}: scores may be off")
    return notes


# ------------------------------------------------------------------------- one video's rows
def _video_inputs(store: FeatureStore, meta: pd.DataFrame):
    for row in meta.itertuples(index=False):
        yield (row.video_id, store.load(row.video_id), store.frame_index(row.video_id),
               int(row.n_frames), int(row.stride or store.attrs.get("stride", 1)))


def _known_labels(row, normal_class: str) -> np.ndarray | None:
    """(n_frames,) 0/1 frame labels, or None when unknown (unlabelled video, or an abnormal
    video without annotated intervals)."""
    if row.class_name is None or (isinstance(row.class_name, float) and np.isnan(row.class_name)):
        return None
    if row.class_name == normal_class:
        return np.zeros(int(row.n_frames), dtype=np.int8)
    if len(row.intervals) == 0:
        return None
    return frame_labels(int(row.n_frames), row.intervals)


def _video_row(row, scores: FrameScores, class_names: list[str], found: list[Interval],
               normal_class: str) -> dict:
    s = scores.p_anomaly
    pred = normal_class
    if s.max(initial=0) >= THRESHOLD:
        pred = video_class_scores(scores.class_probs, class_names, normal_class).idxmax()
    labelled = isinstance(row.class_name, str)
    return {"video_id": row.video_id, "split": row.split if labelled else None,
            "class_name": row.class_name if labelled else None,
            "n_frames": scores.n_frames, "fps": row.fps, "max_p_anomaly": float(s.max()),
            "mean_p_anomaly": float(s.mean()), "pred_class": pred,
            "truth_intervals": ";".join(f"{a}-{b}" for a, b in row.intervals),
            "found_intervals": ";".join(f"{iv.start_frame}-{iv.end_frame}" for iv in found)}


def _score_meta(store: FeatureStore, meta: pd.DataFrame, model, cfg: dict, out: Path,
                make_plots: bool, progress) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Score the videos of ``meta``; per-video PNGs into out/plots. (frames, videos, found)."""
    class_names, normal_class = list(cfg["class_names"]), cfg.get("normal_class", NORMAL_CLASS)
    device = next(model.parameters()).device
    frames, videos, found_all = [], [], {}
    inputs = _video_inputs(store, meta)
    bar = Progress(len(meta), "scoring", "video", progress)
    # grids per forward: 256 on a GPU (1.83 M vs 1.36 M frames/s at 64 on an H200, UCF-Crime
    # shape N 32 x L 16, width 256); 64 on CPU
    grid_batch = 256 if device.type == "cuda" else 64
    for row, scores in zip(meta.itertuples(index=False),
                           score_videos(model, inputs, device, grid_batch, str(store.path))):
        labels = _known_labels(row, normal_class)
        times = tables.frame_times(scores.n_frames, row.fps, row.stride,
                                   store.timestamps_ms(row.video_id))
        known_class = row.class_name if isinstance(row.class_name, str) else None
        frames.append(tables.frame_table(row.video_id, scores.p_anomaly, scores.class_probs,
                                         class_names, times, labels, known_class))
        found = find_intervals(scores.p_anomaly, scores.class_probs, class_names, row.fps,
                               THRESHOLD, normal_class=normal_class)
        found_all[row.video_id] = found
        videos.append(_video_row(row, scores, class_names, found, normal_class))
        if make_plots:
            plots.video_figure(row.video_id, scores.p_anomaly, scores.class_probs, class_names,
                               row.fps, out / "plots" / f"{row.video_id}.png", row.intervals,
                               labels, known_class, THRESHOLD, found, normal_class)
        bar.update(1)
    bar.close()
    return pd.concat(frames, ignore_index=True), pd.DataFrame(videos), found_all


# ------------------------------------------------------------------------------ a split
def _select(store: FeatureStore, meta: pd.DataFrame, split: str, cfg: dict,
            notes: list[str]) -> pd.DataFrame:
    if meta.empty:
        raise UserError(f"{store.path}: holds no videos; run `pipeline extract` first")
    if meta["split"].isna().all():
        notes.append(f"{store.path} has no labels: scored all {len(meta)} videos, metrics "
                     "skipped (attach labels with `pipeline label`)")
        return meta
    if split == "all":
        return meta
    chosen = meta[meta["split"] == split]
    if chosen.empty and split == "val" and cfg.get("val_videos"):
        chosen = meta[meta["video_id"].isin(cfg["val_videos"])]
        notes.append(f"the store has no val split: scored the {len(chosen)} validation videos "
                     "the run carved from train")
    if chosen.empty:
        have = sorted(set(meta["split"].dropna()))
        raise UserError(f"{store.path}: no videos in split {split!r} (splits here: "
                        f"{', '.join(have)}); pass --split {have[-1] if have else 'all'}")
    return chosen.reset_index(drop=True)


def _metrics(frames: pd.DataFrame, videos: pd.DataFrame, meta: pd.DataFrame, cfg: dict,
             notes: list[str]):
    """(metrics, per-class table) over the frames with known labels, or (None, None)."""
    known = frames["label"].notna()
    unknown_videos = sorted(set(frames.loc[~known, "video_id"]))
    if unknown_videos:
        notes.append(f"{len(unknown_videos)} video(s) have no frame labels (unlabelled, or "
                     "abnormal without annotated intervals) and are left out of the metrics: "
                     + ", ".join(unknown_videos[:5]) + (" ..." if len(unknown_videos) > 5 else ""))
    if not known.any():
        if not any("metrics skipped" in n for n in notes):
            notes.append("no frame labels in this split: scores written, metrics skipped")
        return None, None
    labelled = frames[known].reset_index(drop=True)
    info = meta[meta["video_id"].isin(set(labelled["video_id"]))]
    vids = pd.DataFrame({"video_id": info["video_id"], "label": info["label"].astype(int),
                         "class_names_all": info["class_names_all"]})
    result, per_class = summarize(labelled, vids, list(cfg["class_names"]),
                                    cfg.get("normal_class", NORMAL_CLASS), THRESHOLD)
    if result["n_anomalous_frames"] in (0, result["n_frames"]):
        notes.append("only one kind of frame (all normal or all anomalous) has labels: "
                     "AUC and AP are undefined")
    return result, per_class


def _disk_full(folder: OutputFolder):
    """A full or read-only disk while the scoring is written: one line naming the folder
    (the staged files are deleted on the way out; the previous scoring stays)."""
    return storage_errors(folder.out, "write the scoring",
                          "score into another --out, then run the same command again; the "
                          "previous scoring there is intact",
                          needed=lambda: disk_usage(folder.stage), at_least=True)


def score_split(features=None, run=None, split: str = "test", out=None, csv: bool = False,
                device: str = "auto", plots_per_video: bool = True,
                progress: bool | None = None, thumbnails: bool = True) -> ScoreResult:
    """Score every video of ``split`` (train | val | test | all) of the store ``features``
    with ``run`` and write the table, metrics, plots and report to ``out`` (``thumbnails``:
    the report's frames at alarms and missed intervals, taken from the source videos)."""
    t0 = time.perf_counter()
    if split not in (*SPLITS, "all"):
        raise UserError(f"--split {split}: choose one of {', '.join(SPLITS)}, all")
    features = Path(features) if features else paths.default_features()
    run_dir, model, cfg = load_scoring_run(run, device)
    with OutputFolder(out or paths.default_scores() / split, {"split": split},
                      "--out" if out else None) as folder, _disk_full(folder):
        stage = folder.stage
        with open_store(features) as store:
            notes = check_compatible(store, cfg, run_dir) + baselines_note(cfg)
            meta = _select(store, store.metadata(), split, cfg, notes)
            log.info("scoring %d videos of %s with %s", len(meta), features, run_dir)
            frames, videos, _ = _score_meta(store, meta, model, cfg, stage, plots_per_video,
                                            progress)
        tables.write_table(frames, stage, csv)
        videos.to_csv(stage / VIDEOS, index=False)
        result_metrics, per_class = _metrics(frames, videos, meta, cfg, notes)
        body = {"split": split, "features": str(features), "run": str(run_dir),
                "threshold": THRESHOLD, "metrics": result_metrics, "notes": notes,
                "per_class": per_class.to_dict("records") if per_class is not None else None}
        if result_metrics is not None:
            per_class.to_csv(stage / tables.PER_CLASS, index=False)
            labelled = frames[frames["label"].notna()]
            if 0 < result_metrics["n_anomalous_frames"] < result_metrics["n_frames"]:
                plots.summary_figure(labelled["label"].to_numpy(int),
                                     labelled["p_anomaly"].to_numpy(), result_metrics,
                                     stage / "summary.png",
                                     f"{split}: {features.name}, run {run_dir.name}")
        report.render(stage, body=body, frames=frames, videos_table=videos,
                      report_dir=folder.out, thumbnails=thumbnails)
        files = folder.commit(body)
    return ScoreResult(folder.out, run_dir, split, frames, videos, result_metrics, per_class,
                       files, folder.out / "plots" if plots_per_video else None, notes,
                       seconds=time.perf_counter() - t0, report=folder.out / report.REPORT)


# ---------------------------------------------------------------------------- one video
def score_video(video_path, run=None, out=None, render: bool = False, csv: bool = False,
                device: str = "auto", progress: bool | None = None,
                thumbnails: bool = True) -> ScoreResult:
    """Extract one new video with the CLIP recorded in the run, score it, write its table and
    plot (and with ``render`` an mp4 of the frames next to the moving score curve), and find
    its anomalous intervals."""
    from extract import extract_videos

    t0 = time.perf_counter()
    video_path = Path(video_path)
    if not video_path.is_file():
        raise UserError(f"--video {video_path}: no such file (for a folder of videos use "
                        "`pipeline extract` then `pipeline score --split all`)")
    run_dir, model, cfg = load_scoring_run(run, device)
    model_id = cfg.get("model_id")
    if not model_id:
        raise UserError(f"{run_dir / CONFIG}: records no model_id, so the CLIP to extract "
                        "with is unknown; score extracted features with --features instead")
    with OutputFolder(out or paths.default_video_scores(video_path.stem),
                      {"video": str(video_path.resolve())}, "--out" if out else None) as folder, \
            _disk_full(folder):
        out, stage = folder.out, folder.stage
        store_path = out / "features.h5"             # the extracted video, kept for re-scoring
        extracted = extract_videos(video_path, out=store_path, model=model_id,
                                   stride=int(cfg.get("stride") or 1), device=device,
                                   workers=1, progress=progress)
        if extracted.failed:
            raise UserError(f"{video_path}: cannot be decoded ({extracted.failed[0].reason}); "
                            "check that it plays (ffmpeg -i FILE) or re-encode it")
        with open_store(store_path) as store:
            notes = check_compatible(store, cfg, run_dir)
            meta = store.metadata()
            meta = meta[meta["source_path"] == video_path.name].reset_index(drop=True)
            frames, videos, found = _score_meta(store, meta, model, cfg, stage, True, progress)
        tables.write_table(frames, stage, csv)
        videos.to_csv(stage / VIDEOS, index=False)
        body = {"video": str(video_path.resolve()), "run": str(run_dir), "threshold": THRESHOLD,
                "metrics": None, "notes": notes + ["a single new video has no labels"],
                "intervals": {vid: [iv.to_dict() for iv in ivs] for vid, ivs in found.items()}}
        rendered = None
        if render:
            from .render import render_video

            vid = videos["video_id"].iloc[0]
            render_video(video_path, frames, stage / f"{vid}_scored.mp4", THRESHOLD)
            rendered = out / f"{vid}_scored.mp4"
        report.render(stage, body=body, frames=frames, videos_table=videos, report_dir=out,
                      thumbnails=thumbnails)
        files = [f for f in folder.commit(body) if f != rendered]
    return ScoreResult(out, run_dir, "video", frames, videos, None, None, files,
                       out / "plots", notes, found, rendered,
                       seconds=time.perf_counter() - t0, report=out / report.REPORT)
