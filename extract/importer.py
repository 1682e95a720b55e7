"""The second way into the feature file: features someone already extracted (one ``.npy``
per video), imported beside stage one's own extraction.

``features_dir`` is searched recursively. Each video is one of:

- ``<video>.npy`` of shape (T, D): one row per feature step (one crop);
- ``<video>.npy`` of shape (T, n_crops, D): ten-crop (or five-crop) features;
- ``<video>__0.npy`` ... ``<video>__{n-1}.npy``, each (T, D): one file per crop.

``crop`` picks what is stored: ``"mean"`` (default) the mean over the crops, (T, D);
an integer K crop K, (T, D); ``"all"`` keeps the crops as an axis, (T, n_crops, D), with
the file attr ``n_crops``. The video_id is the file name without ``.npy`` (and crop
suffix), matched to the names in the annotations.

Row t stands for native frame ``t * stride``; the native frame count is taken as
``T * stride`` and timestamps assume ``fps`` (neither is in a bare .npy). Embeddings are
stored as float16, the store's dtype; integer arrays are refused (they are not features,
or a cast would be a guess). Everything is checked first, then a new file is written next
to the output and atomically renamed over it: a failure never leaves a half store, and an
existing store (of imported features, same model) is extended, labels included, not lost.
The whole run holds the output's writer lock (``features/lock.py``).
"""
from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from features import schema
from features.schema import DEFAULT_FPS
from features.datasets.base import first_names
from features.datasets.labelling import LabelSummary, apply_plan, plan_labels, read_annotations
from features.datasets.validation import check_fraction
from features.errors import UserError, first_line, one_line
from features.labels import put_slots
from features.lock import store_lock
from features.paths import default_features
from features.progress import Progress
from features.safe_write import H5Writer, atomic_write, storage_errors
from features.store import open_store, write_file_attrs, write_video

log = logging.getLogger("pipeline")

_CROP_FILE = re.compile(r"^(.+)__(\d+)$")


@dataclass
class NpyFeatures:
    """One video's .npy features on disk (not a feature file: that is the HDF5 they go
    into): one file, or one file per crop (in crop order)."""
    video_id: str
    paths: list[Path]
    shape: tuple[int, ...] = ()          # (T, D) or (T, n_crops, D), crop files stacked

    @property
    def n_rows(self) -> int:
        return self.shape[0]

    @property
    def n_crops(self) -> int:
        return self.shape[1] if len(self.shape) == 3 else 1

    @property
    def dim(self) -> int:
        return self.shape[-1]

    def load(self) -> np.ndarray:
        """(T, D) or (T, n_crops, D) float32."""
        arrays = [_load(p).astype(np.float32, copy=False) for p in self.paths]
        return arrays[0] if len(arrays) == 1 else np.stack(arrays, axis=1)


def parse_crop(crop: str | int) -> str | int:
    """``"mean"``, ``"all"`` or a crop index."""
    text = str(crop).strip().lower()
    if text in ("mean", "all"):
        return text
    if text.isdigit():
        return int(text)
    raise UserError(f"--crop {crop}: use mean (average the crops), all (keep them as an axis) "
                    "or a crop number such as 0")


def _load(path: Path, mmap_mode: str | None = None) -> np.ndarray:
    """``np.load`` with every way a file can be unreadable as one line naming it."""
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:     # EOFError: 0 bytes, cut in the header
        why = "empty file (0 bytes)" if path.exists() and path.stat().st_size == 0 \
            else one_line(err) or type(err).__name__
        raise UserError(f"{path}: not a readable .npy array ({why}); save features with "
                        "numpy.save as float arrays") from None


def _shape(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    arr = _load(path, mmap_mode="r")
    if not np.issubdtype(arr.dtype, np.floating):
        kind = "integer" if np.issubdtype(arr.dtype, np.integer) else "not numeric"
        raise UserError(f"{path}: dtype {arr.dtype} ({kind}); features must be float arrays "
                        "(if these integers really are features, save them with "
                        ".astype(numpy.float32))")
    return tuple(arr.shape), arr.dtype


def scan_features(features_dir: str | Path) -> list[NpyFeatures]:
    """Find every video's feature file(s) under ``features_dir`` and read their shapes."""
    root = Path(features_dir).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: no such folder; pass --features-dir with the folder of .npy "
                        "feature files (searched recursively)")
    singles: dict[str, Path] = {}
    crops: dict[str, dict[int, Path]] = {}
    for path in sorted(root.rglob("*.npy")):
        match = _CROP_FILE.match(path.stem)
        if match:
            vid, k = match.group(1), int(match.group(2))
            if k in crops.setdefault(vid, {}):
                raise UserError(f"{path}: crop {k} of {vid} again (first {crops[vid][k]}); keep "
                                "one copy")
            crops[vid][k] = path
        else:
            if path.stem in singles:
                raise UserError(f"{path}: a second feature file for {path.stem} (first "
                                f"{singles[path.stem]}); video names must be unique")
            singles[path.stem] = path
    if not singles and not crops:
        raise UserError(f"{root}: no .npy files found; pass the folder holding one .npy per video")
    files: list[NpyFeatures] = []
    for vid, path in singles.items():
        if vid in crops:
            raise UserError(f"{path}: {vid} has both a whole file and crop files "
                            f"({crops[vid][min(crops[vid])]}); keep one form")
        shape, _ = _shape(path)
        if len(shape) not in (2, 3) or shape[0] == 0 or 0 in shape[1:]:
            raise UserError(f"{path}: shape {shape} is not (T, D) or (T, crops, D) with T > 0")
        files.append(NpyFeatures(vid, [path], shape))
    for vid, by_index in crops.items():
        absent = sorted(set(range(max(by_index) + 1)) - set(by_index))
        if absent:
            raise UserError(f"{by_index[max(by_index)]}: crop files of {vid} must be numbered "
                            f"__0 to __{max(by_index)}; missing __{absent[0]}")
        paths = [by_index[k] for k in sorted(by_index)]
        shapes = [_shape(p)[0] for p in paths]
        for p, s in zip(paths, shapes):
            if len(s) != 2 or s != shapes[0] or s[0] == 0:
                raise UserError(f"{p}: shape {s}, but a crop file must be (T, D) like "
                                f"{paths[0].name} {shapes[0]}")
        files.append(NpyFeatures(vid, paths, (shapes[0][0], len(paths), shapes[0][1])))
    files.sort(key=lambda f: f.video_id)
    first = files[0]
    for f in files:
        if f.dim != first.dim:
            raise UserError(f"{f.paths[0]}: features are {f.dim}-dim but {first.paths[0]} is "
                            f"{first.dim}-dim; all features must come from one model")
        if f.n_crops != first.n_crops:
            raise UserError(f"{f.paths[0]}: {f.n_crops} crops but {first.paths[0]} has "
                            f"{first.n_crops}; import one kind of features at a time")
    return files


def _model_fingerprint(model: str, dim: int) -> tuple[str, str]:
    """(sha256, revision) of the CLIP ``model`` when it loads here, else ("", "")."""
    from features.clip_loader import load_clip

    try:
        clip = load_clip(model, "cpu")
    except (UserError, OSError, ValueError) as err:
        log.warning("warning: could not load --model %s here (%s); recording its id only, "
                    "model_sha256 left empty", model, first_line(err))
        return "", ""
    if clip.embed_dim != dim:
        raise UserError(f"--model {model}: its embeddings are {clip.embed_dim}-dim but the "
                        f"features are {dim}-dim; pass the model that produced them")
    return clip.fingerprint, clip.revision


def _select_crop(arr: np.ndarray, crop: str | int) -> np.ndarray:
    """(T, D) or (T, n, D) -> what is stored: (T, D), or (T, n, D) for ``all``."""
    if crop == "all":
        return arr if arr.ndim == 3 else arr[:, None, :]
    if arr.ndim == 2:
        return arr
    return arr.mean(axis=1) if crop == "mean" else arr[:, crop]


def _to_float16(arr: np.ndarray, f: NpyFeatures) -> np.ndarray:
    if not np.isfinite(arr).all():
        raise UserError(f"{f.paths[0]}: contains NaN or infinite values; re-export the features")
    out = arr.astype(np.float16)
    if not np.isfinite(out).all():
        raise UserError(f"{f.paths[0]}: values up to {np.abs(arr).max():.3g} exceed the float16 "
                        "range of the store (65504); rescale the features")
    return out


@dataclass
class ImportResult:
    out: Path
    imported: list[str]
    skipped: list[str]                   # already in the store
    model_sha256: str
    labels: LabelSummary
    crop: str | int

    def summary(self) -> str:
        kept = {"mean": "mean over crops", "all": "all crops as an axis"}.get(
            self.crop, f"crop {self.crop}")
        lines = [f"imported {len(self.imported)} videos into {self.out} ({kept}; model sha256 "
                 f"{self.model_sha256[:12] + '...' if self.model_sha256 else 'unknown: model not loadable here'})"]
        if self.skipped:
            lines.append(f"  {len(self.skipped)} already in the store, kept: "
                         f"{first_names(self.skipped)}")
        lines.append(str(self.labels))
        return "\n".join(lines)


def import_features(features_dir: str | Path, dataset: str, annotations: str | Path, model: str,
                    out: str | Path | None = None, crop: str | int = "mean", stride: int = 1,
                    fps: float = DEFAULT_FPS, val_fraction: float = 0.2, val_seed: int = 0,
                    allow_missing: bool = False, wait: bool = False,
                    labels: str | Path | None = None) -> ImportResult:
    """Write the .npy features under ``features_dir`` into the store ``out`` (default
    pipeline_out/features.h5), labelled from ``annotations`` (``labels``: id,name CSV of a
    reference bundle's label ids), marked source=imported.
    Another process writing ``out`` is an error naming it, or with ``wait`` awaited."""
    out = Path(out) if out is not None else default_features()
    crop = parse_crop(crop)
    check_fraction(val_fraction)
    if stride < 1 or not fps > 0:
        raise UserError(f"--stride {stride} / --fps {fps}: stride must be >= 1 and fps > 0")
    files = scan_features(features_dir)
    with store_lock(out, "import", wait=wait):
        return _import_locked(files, features_dir, dataset, annotations, model, out, crop,
                              stride, fps, val_fraction, val_seed, allow_missing, labels)


def _import_locked(files: list[NpyFeatures], features_dir, dataset, annotations, model: str,
                   out: Path, crop, stride: int, fps: float, val_fraction: float, val_seed: int,
                   allow_missing: bool, labels=None) -> ImportResult:
    dim, n_crops = files[0].dim, files[0].n_crops
    if isinstance(crop, int) and crop >= n_crops:
        raise UserError(f"--crop {crop}: the features have {n_crops} crop(s) "
                        f"(e.g. {files[0].paths[0]}); pick 0 to {n_crops - 1}, mean or all")
    stored_crops = (n_crops if crop == "all" else None)

    existing = pd.DataFrame({"video_id": [], "n_frames": []})
    if out.exists():
        existing = _check_existing(out, model, dim, stored_crops, crop, stride)
    have = set(existing["video_id"])
    new = [f for f in files if f.video_id not in have]
    skipped = [f.video_id for f in files if f.video_id in have]
    videos = pd.concat([existing, pd.DataFrame({
        "video_id": [f.video_id for f in new],
        "n_frames": [f.n_rows * stride for f in new]})], ignore_index=True)

    ann = read_annotations(dataset, annotations, labels)
    plan = plan_labels(ann, videos, out, val_fraction, val_seed, allow_missing)
    sha, revision = _model_fingerprint(model, dim)

    def write(tmp: Path) -> None:
        if out.exists():
            shutil.copyfile(out, tmp)
        with H5Writer(tmp, "r+" if out.exists() else "w") as h5:
            if out.exists():
                h5.attrs["updated_utc"] = schema.utc_now()
            else:
                unknown = "unknown (imported features)"
                write_file_attrs(h5, schema.file_attrs(
                    source="imported", model_id=model, model_sha256=sha,
                    model_revision=revision, embed_dim=dim, stride=stride,
                    preprocessing=unknown, decoder=unknown, fps=float(fps), fps_assumed=True,
                    imported_from=str(features_dir), crop=str(crop), source_crops=n_crops,
                    **({"n_crops": n_crops} if crop == "all" else {})))
            h5.require_group("videos")
            with Progress(len(new), "import", "video") as bar:
                for f in new:
                    _write_one(h5, f, features_dir, crop, stride, fps)
                    bar.update(1)
            put_slots(h5)                      # sized for the new count, old labels kept
        apply_plan(tmp, ann, plan, val_fraction, val_seed)

    with storage_errors(out, "write the imported features", "choose another --out"):
        atomic_write(out, write)
    labels = LabelSummary(out, ann.dataset, ann.source, plan.labels, plan.class_names,
                          plan.missing, plan.unlabelled, val_fraction, val_seed, plan.carved)
    return ImportResult(out, [f.video_id for f in new], skipped, sha, labels, crop)


def _check_existing(out: Path, model: str, dim: int, stored_crops: int | None, crop,
                    stride: int) -> pd.DataFrame:
    """Check an existing ``out`` can take these features; return its (video_id, n_frames)."""
    with open_store(out) as store:
        a = store.attrs
        if a.get("source") != "imported":
            raise UserError(f"{out}: holds extracted features; import into another file with "
                            "--out NEW.h5")
        if a.get("model_id") != model:
            raise UserError(f"{out}: its features come from model {a.get('model_id')}, you pass "
                            f"--model {model}; import into another file with --out NEW.h5")
        if store.embed_dim != dim:
            raise UserError(f"{out}: the store's features are {store.embed_dim}-dim, these are "
                            f"{dim}-dim; import into another file with --out NEW.h5")
        if store.n_crops != stored_crops or str(a.get("crop")) != str(crop) or \
                int(a.get("stride", 1)) != stride:
            raise UserError(f"{out}: was imported with --crop {a.get('crop')} --stride "
                            f"{a.get('stride')}; use the same options or another --out file")
        meta = store.metadata()
    return pd.DataFrame({"video_id": meta["video_id"], "n_frames": meta["n_frames"]})


def _write_one(h5: h5py.File, f: NpyFeatures, features_dir, crop, stride: int, fps: float) -> None:
    rows = _to_float16(_select_crop(f.load(), crop), f)      # (T, D) or (T, n, D)
    index = np.arange(len(rows), dtype=np.int64) * stride
    root = Path(features_dir).expanduser()
    rel = f.paths[0].relative_to(root).as_posix()
    if len(f.paths) > 1:
        rel = rel.rsplit("__", 1)[0] + f"__{{0..{len(f.paths) - 1}}}.npy"
    stats = [p.stat() for p in f.paths]
    n_frames = len(rows) * stride
    write_video(h5, f.video_id, rows, index, index * (1000.0 / fps), schema.video_attrs(
        source_path=rel, source_size=sum(s.st_size for s in stats),
        source_mtime_ns=max(s.st_mtime_ns for s in stats), fps=float(fps), fps_assumed=True,
        n_frames=n_frames, duration_s=n_frames / fps, stride=stride, source_crops=f.n_crops))
