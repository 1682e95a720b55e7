"""`extract_videos`: a folder of videos -> one HDF5 feature file, resumable and crash-safe.

Steps: scan the folder; take the feature file's writer lock for the rest of the run; skip
videos already stored (same relative path, size and mtime) or already in a committed shard;
refuse a video whose id already names another, still existing, file in the store; probe the
rest in parallel (bad files fail here, cheaply); decode + encode each remaining video into
its own shard (threads sharing one encoder locally, or tasks on a Dask cluster with
``scheduler``); merge the shards into the feature file atomically; write the failures table
next to it. A full or read-only disk stops the run with one line; finished videos are kept.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
from features import paths, schema
from features.clip_loader import DEFAULT_MODEL, LoadedClip, load_clip
from features.datasets import read_annotations
from features.datasets.labelling import label_locked
from features.datasets.validation import check_fraction
from features.errors import UserError, one_line
from features.labels import read_labels
from features.lock import store_lock
from features.progress import Progress
from features.safe_write import storage_error
from features.store import FORMAT, read_attrs

from .commit import SOURCE_ROOT, StorageError, committed_shards, merge_shards, parts_dir
from .decode import DECODERS, PREPROCESSING
from .devices import EncoderPool, encoder_devices
from .encode import FrameEncoder, default_batch_size, fit_batch_size
from .ffmpeg_bin import ffmpeg_exe
from .probe import ProbeError, VideoInfo, probe
from .result import ExtractResult, Failure, write_failures
from .scan import Scan, VideoSource, scan_videos, unreadable_reason
from .video import ShardSettings, extract_one_video

log = logging.getLogger("pipeline")


def _model_id_for_store(model: str) -> str:
    """Hub ids as given; local folders as absolute paths, so later stages find them."""
    local = Path(model).expanduser()
    return str(local.resolve()) if local.exists() else model


def _existing_store(out: Path) -> tuple[dict, dict[str, dict]]:
    """(file attrs, {video_id: video attrs}) of the current feature file, if any."""
    if not out.exists():
        return {}, {}
    try:
        with h5py.File(out, "r") as h5:
            if h5.attrs.get("format") != FORMAT:
                raise UserError(f"--out {out}: exists and is not a feature file of this tool; "
                                "choose another --out")
            read_labels(h5)                   # v0.1 labels: a line naming `pipeline label`
            videos = {vid: read_attrs(g) for vid, g in h5.get("videos", {}).items()
                      if g.attrs.get("complete", False)}
            return read_attrs(h5), videos
    except OSError as err:
        raise UserError(f"--out {out}: exists but cannot be read as HDF5 ({one_line(err)}); "
                        "move it away and re-run (committed videos in the .parts folder are "
                        "kept)") from None


def _check_compatible(out: Path, stored: dict, model: str | None, stride: int) -> str:
    """The model to use; an error when ``out`` was made with another model or stride."""
    if stored:
        if int(stored.get("stride", stride)) != stride:
            raise UserError(f"--out {out}: holds features at stride {stored['stride']}, not "
                            f"{stride}; use --stride {stored['stride']} or another --out")
        if model and _model_id_for_store(model) != stored.get("model_id"):
            raise UserError(f"--out {out}: holds features of model {stored.get('model_id')}; "
                            f"pass that --model or another --out")
        return stored.get("model_id", model or DEFAULT_MODEL)
    return model or DEFAULT_MODEL


def _file_attrs(clip: LoadedClip, stride: int, batch_size: int) -> dict:
    return schema.file_attrs(
        source="extracted", model_id=_model_id_for_store(clip.model_id),
        model_sha256=clip.fingerprint, model_revision=clip.revision, embed_dim=clip.embed_dim,
        stride=stride, preprocessing=PREPROCESSING,
        decoder=f"ffmpeg ({Path(ffmpeg_exe()).name}); per video: decoder attr (cpu | nvdec)",
        encoder_dtype=str(clip.dtype).replace("torch.", ""), batch_size=batch_size,
        device=clip.device.type)


def _probe_all(todo: list[VideoSource], workers: int, failures: list[Failure],
               show: bool) -> list[tuple[VideoSource, VideoInfo]]:
    ok: list[tuple[VideoSource, VideoInfo]] = []
    readable = []
    for src in todo:
        why = unreadable_reason(src)
        if why:
            failures.append(Failure(src.video_id, src.relpath, why))
        else:
            readable.append(src)

    def one(src):
        try:
            return src, probe(str(src.path)), None
        except ProbeError as err:
            return src, None, str(err)

    with ThreadPoolExecutor(max_workers=max(2, workers)) as pool, \
            Progress(len(readable), "probing", "video", show, leave=False) as bar:
        for src, info, why in pool.map(one, readable):
            if why:
                failures.append(Failure(src.video_id, src.relpath, why))
            else:
                ok.append((src, info))
            bar.update(1)
    return ok


def extract_videos(videos: str | Path, out: str | Path | None = None, model: str | None = None,
                   stride: int = 1, batch_size: int | None = None, device: str = "auto",
                   workers: int | None = None, scheduler: str | None = None,
                   progress: bool | None = None, decoder: str = "auto",
                   wait: bool = False, dataset: str | None = None,
                   annotations: str | Path | None = None, labels: str | Path | None = None,
                   val_fraction: float = 0.2, val_seed: int = 0,
                   allow_missing: bool = False) -> ExtractResult:
    """Extract CLIP frame embeddings of every video under ``videos`` into ``out``.

    ``device``: ``auto`` (every GPU, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or a
    comma-separated list: one encoder per device, videos spread over them. ``decoder``:
    ``auto`` (NVDEC when encoding on a GPU), ``cpu`` or ``nvdec``; a video NVDEC refuses is
    decoded on the CPU.

    Re-running skips what is stored; an interrupted run resumes where it stopped. Returns
    an :class:`ExtractResult`; videos that fail are listed there and in
    ``<out>.failures.csv`` and never stop the run. One writer at a time: another extract,
    label or import of ``out`` is an error naming it, or with ``wait`` awaited.

    With ``dataset`` and ``annotations`` the stored videos are labelled at the end, as
    :func:`features.datasets.label_store` does (``labels``, ``val_fraction``, ``val_seed``,
    ``allow_missing`` as there), under the same writer lock: the annotations are read
    first, so a bad line fails before any video is decoded (``result.labels``).
    """
    t0 = time.perf_counter()
    out = Path(out) if out else paths.default_features()
    if stride < 1:
        raise UserError(f"--stride {stride}: must be 1 or more")
    if decoder not in ("auto", *DECODERS):
        raise UserError(f"--decoder {decoder}: use auto, {' or '.join(DECODERS)}")
    devices = encoder_devices(device)
    if scheduler and len(devices) > 1 and "," in device:
        raise UserError(f"--device {device}: a list is for local runs; on a Dask cluster each "
                        "worker uses its own GPU (--device auto)")
    workers = workers or os.cpu_count() or 1
    if (dataset is None) != (annotations is None):
        raise UserError("--dataset and --annotations go together; give both or neither")
    ann = None
    if dataset:
        check_fraction(val_fraction)
        ann = read_annotations(dataset, annotations, labels)
    scan = scan_videos(videos)
    with store_lock(out, "extract", wait=wait):
        result = _extract_locked(scan, out, model, stride, batch_size, device, devices,
                                 decoder, workers, scheduler, progress)
        if ann is not None:
            result.labels = label_locked(result.out, ann, val_fraction, val_seed,
                                         allow_missing)
    result.seconds = time.perf_counter() - t0
    return result


def _clash(src: VideoSource, have: dict, root: Path, out: Path) -> str | None:
    """Why ``src`` must not replace the stored video of the same id (its source, another
    file, still exists), or None: it is that file changed in place, or that file is gone."""
    old_rel = have.get("source_path")
    if old_rel is None:
        return None
    old = Path(have.get(SOURCE_ROOT) or root) / old_rel
    try:
        if os.path.samefile(old, src.path):
            return None
    except OSError:                                   # the stored video's source is gone
        if old != src.path:
            log.warning("%s: replacing the stored video %s (from %s, no longer there)",
                        src.relpath, src.video_id, old)
        return None
    return (f"its video_id {src.video_id} already names another video in {out.name}, from "
            f"{old}; rename one of the two files, or extract into another --out")


def _extract_locked(scan: Scan, out: Path, model: str | None, stride: int,
                    batch_size: int | None, device: str, devices: list, decoder: str,
                    workers: int, scheduler: str | None, progress: bool | None
                    ) -> ExtractResult:
    stored_attrs, stored = _existing_store(out)
    model = _check_compatible(out, stored_attrs, model, stride)
    folder = parts_dir(out)
    pending = committed_shards(folder)
    result = ExtractResult(out=out, found=len(scan.videos) + len(scan.refused),
                           ignored=scan.ignored, model=model)
    failures = [Failure(r.video_id, r.relpath, r.reason) for r in scan.refused]
    todo: list[VideoSource] = []
    for src in scan.videos:
        have = pending.get(src.video_id, (None, stored.get(src.video_id)))[1]
        if have and (have.get("source_path"), have.get("source_size"),
                     have.get("source_mtime_ns")) == (src.relpath, src.size, src.mtime_ns):
            result.skipped += 1
        elif have and (clash := _clash(src, have, scan.root, out)):
            failures.append(Failure(src.video_id, src.relpath, clash))
        else:
            todo.append(src)
    probed = _probe_all(todo, workers, failures, progress)
    file_attrs = dict(stored_attrs)

    try:
        if probed:
            clips = [load_clip(model, d) for d in (devices[:1] if scheduler else devices)]
            clip = clips[0]
            if stored_attrs.get("model_sha256") not in (None, clip.fingerprint):
                raise UserError(f"--out {out}: was made with other weights of {model} "
                                f"(sha256 {str(stored_attrs['model_sha256'])[:12]}..., now "
                                f"{clip.fingerprint[:12]}...); use another --out")
            batch = batch_size or default_batch_size(clip.device)
            encoders = [FrameEncoder(c, batch) for c in clips]
            batch = min(fit_batch_size(e, batch) for e in encoders)
            for e in encoders:
                e.batch_size = batch
            file_attrs = {**_file_attrs(clip, stride, batch), **{
                k: v for k, v in stored_attrs.items() if k in ("created_utc",)}}
            settings = ShardSettings(folder, {**file_attrs, SOURCE_ROOT: str(scan.root)},
                                     stride, decoder)
            log.info("extracting %d videos (%d already stored) with %d decoders, batch %d, "
                     "%s", len(probed), result.skipped, workers, batch,
                     ", ".join(str(c.device) for c in clips))
            t_encode = time.perf_counter()
            if scheduler:
                from .distributed import extract_on_dask
                done, failed = extract_on_dask(probed, scheduler, device, batch, settings,
                                               progress)
            else:
                done, failed = _extract_local(probed, EncoderPool(encoders), settings, workers,
                                              progress)
            result.encode_seconds = time.perf_counter() - t_encode
            result.done = [src.video_id for src, _ in done]
            result.rows = sum(rows for _, rows in done)
            failures += failed
    except KeyboardInterrupt:               # Ctrl-C: keep what finished, then stop
        _merge_committed(out, folder, file_attrs)
        raise
    except StorageError as err:             # disk full / read-only: every video would fail
        kept = _keep_finished(out, folder, file_attrs)
        _write_failures_quietly(out, failures)
        raise storage_error(err.err, out, f"write features into {err.path.parent}",
                            f"choose another --out, then run the same command again ({kept})"
                            ) from None
    # every committed shard: this run's and any left by an interrupted one
    try:
        result.videos_in_store = _merge_committed(out, folder, file_attrs) or len(stored)
    except UserError:
        _write_failures_quietly(out, failures)
        raise
    result.failed = failures
    try:
        result.failures_csv = write_failures(_failures_path(out), failures)
    except OSError as err:                  # the features are safe; only the table is missing
        log.warning("warning: %s: cannot write the failures table (%s)", _failures_path(out),
                    one_line(err))
    if failures:
        log.warning("%d videos failed; see %s", len(failures), result.failures_csv)
    return result


def _failures_path(out: Path) -> Path:
    return out.with_name(out.stem + ".failures.csv")


def _write_failures_quietly(out: Path, failures: list[Failure]) -> None:
    try:
        write_failures(_failures_path(out), failures)
    except OSError:
        pass


def _keep_finished(out: Path, folder: Path, file_attrs: dict) -> str:
    """Merge what finished before a storage error, if the disk lets us; say where it is."""
    try:
        _merge_committed(out, folder, file_attrs)
        return f"the finished videos are in {out.name}"
    except UserError:
        n = len(list(folder.glob("*.h5")))
        return f"the finished videos ({n}) wait in {folder} for the next run"


def _merge_committed(out: Path, folder: Path, file_attrs: dict) -> int:
    """Merge the committed shards in ``folder`` into ``out``; the number of videos now in
    ``out``, or 0 when there was nothing to merge."""
    shards = committed_shards(folder)
    if not shards:
        return 0
    if not file_attrs:                          # nothing new was encoded: a shard's attrs
        with h5py.File(next(iter(shards.values()))[0], "r") as h5:
            file_attrs = read_attrs(h5)
    n = merge_shards(out, {v: p for v, (p, _) in shards.items()}, file_attrs)
    try:
        folder.rmdir()
    except OSError:
        pass
    return n


def _extract_local(probed, encoders: EncoderPool, settings: ShardSettings, workers: int,
                   show: bool | None):
    """Threads, one ffmpeg process each, sharing one encoder per device (each used one
    batch at a time)."""
    stop = threading.Event()
    total = sum(info.rows(settings.stride) for _, info in probed)
    frames_bar = Progress(total, "frames", "frame", show, lines=False, unit_scale=True,
                          smoothing=0.05)
    videos_bar = Progress(len(probed), "videos", "video", show)

    def one(item):
        src, info = item
        with encoders.take() as encoder:
            why = extract_one_video(src, info, encoder, settings, on_rows=frames_bar.update,
                                    stop=stop)
        videos_bar.update(1)
        return src, info, why

    done, failed = [], []
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for src, info, why in pool.map(one, probed):
            if why is None:
                done.append((src, info.rows(settings.stride)))
            else:
                failed.append(Failure(src.video_id, src.relpath, why))
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        frames_bar.close()
        videos_bar.close()
    return done, failed
